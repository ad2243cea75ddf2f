"""JupyterHub for a lab room on one machine: `make hub` (see the README, "Teaching a class on one server").

Settings come from the environment, so one file serves the room and the integration test:

    COURSE_HUB_IP        listening address (default 127.0.0.1: only this machine; 0.0.0.0 for a room)
    COURSE_HUB_PORT      port (default 8000)
    COURSE_HUB_SSL_CERT, COURSE_HUB_SSL_KEY   HTTPS certificate and key (strongly advised off 127.0.0.1)
    COURSE_HUB_STATE     folder for the hub's database, cookie secret and (shared mode) homes (default hub/state)
    COURSE_HUB_ADMIN     the instructor's user name (default instructor): an admin who can open any server
    COURSE_HUB_SPAWNER   "system" (default: one system user per student) or "shared" (test/demo only)
    COURSE_HUB_MEM_MB    memory limit per student in MB (default 1024: the README's capacity table)
    COURSE_GIT_URL       where students' copies come from (default: this repository's folder)
"""

import os
import sys
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

state = Path(os.environ.get("COURSE_HUB_STATE", HERE / "state")).resolve()
state.mkdir(parents=True, exist_ok=True)

# 1. Where it listens. The default is this machine only; a room needs COURSE_HUB_IP=0.0.0.0 and HTTPS.
c.JupyterHub.ip = os.environ.get("COURSE_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ.get("COURSE_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"  # the hub's own API, for the proxy and the servers: never exposed
c.JupyterHub.hub_port = c.JupyterHub.port + 1
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{c.JupyterHub.port + 2}"
if os.environ.get("COURSE_HUB_SSL_CERT"):
    c.JupyterHub.ssl_cert = os.environ["COURSE_HUB_SSL_CERT"]
    c.JupyterHub.ssl_key = os.environ["COURSE_HUB_SSL_KEY"]
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")

# 2. Who gets in: NativeAuthenticator (no identity provider needed). Students sign up on the hub's
#    page; the instructor approves each one at /hub/authorize. The instructor is an admin.
admin = os.environ.get("COURSE_HUB_ADMIN", "instructor")
c.JupyterHub.authenticator_class = "native"
c.NativeAuthenticator.open_signup = False
c.NativeAuthenticator.minimum_password_length = 8
c.Authenticator.admin_users = {admin}
c.Authenticator.allow_all = True  # anyone the instructor approved
c.JupyterHub.admin_access = True  # the instructor can open a student's server to help

# 3. Each student's server: the course kernel, limits from the measured capacity table, and their
#    own copy of the course pulled by nbgitpuller on first visit (later visits merge, never overwrite).
mode = os.environ.get("COURSE_HUB_SPAWNER", "system")
if mode == "shared":
    c.JupyterHub.spawner_class = "course_spawner.SharedUserSpawner"
    c.SharedUserSpawner.home_dir_template = str(state / "homes" / "{username}")
    if os.geteuid() == 0:  # CI runs as root; a room's servers run as the students (system mode)
        c.Spawner.args = ["--allow-root"]
else:
    c.JupyterHub.spawner_class = "course_spawner.CourseSpawner"
c.Spawner.cmd = [str(Path(sys.executable).with_name("jupyterhub-singleuser"))]
c.Spawner.mem_limit = f"{int(os.environ.get('COURSE_HUB_MEM_MB', '1024'))}M"
c.Spawner.cpu_limit = 1.0
c.Spawner.environment = {"OMP_NUM_THREADS": "1", "COURSE_FAST": os.environ.get("COURSE_FAST", "")}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
repo = os.environ.get("COURSE_GIT_URL", HERE.parent.as_uri())
c.Spawner.default_url = ("/git-pull?repo=" + quote(repo, safe="") + "&branch=main&targetpath=loss-scaling"
                         "&urlpath=" + quote("lab/tree/loss-scaling/notebooks/00_welcome.ipynb", safe=""))

# 4. Idle servers are stopped after an hour (their files stay): jupyterhub-idle-culler as a hub service.
c.JupyterHub.services = [{"name": "idle-culler",
                          "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600"]}]
c.JupyterHub.load_roles = [{"name": "idle-culler", "services": ["idle-culler"],
                            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]}]

# 5. The integration test (tests/test_hub.py) drives the hub through its REST API with an admin token.
if os.environ.get("COURSE_HUB_TEST_TOKEN"):
    c.JupyterHub.services.append({"name": "course-test", "api_token": os.environ["COURSE_HUB_TEST_TOKEN"]})
    c.JupyterHub.load_roles.append({"name": "course-test", "services": ["course-test"],
                                    "scopes": ["admin:users", "admin:servers", "tokens", "access:servers",
                                               "read:users", "list:users"]})
