# Loss & Scaling: the whole set-up is two commands, `make lab` and `make test`.
# Both create the environment in .venv on first use (pinned versions from requirements/lock.txt)
# and reuse it afterwards.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.course-installed
KERNEL := loss-scaling
PORT   ?= 8888
# JupyterLab refuses to start as root unless told; only add the flag when it is needed.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab present test test-fast env lock exercises grade release hub hub-proxy collect clean-env help

help:
	@echo "make lab        create the environment if missing, then open the course in JupyterLab"
	@echo "make test       create the environment if missing, then run the whole test suite"
	@echo "make test-fast  the suite without the slow tests (notebooks, browser)"
	@echo "make present [NB=03] [PORT=8866]  a lesson as a page without code (Voila), or without NB a gallery of all"
# instructors-only
	@echo "make lock       regenerate requirements/lock.txt from course.txt and dev.txt"
	@echo "make exercises  regenerate exercises/ (the student copies) from the masters in solutions/"
	@echo "make grade SUBMISSIONS=dir [OUT=gradebook.csv] [FEEDBACK=feedback]"
	@echo "                grade one folder per student: a CSV gradebook and one feedback file each"
	@echo "make release OUT=dir   the students' edition: no solutions/, no hidden tests, no answers"
	@echo "make hub        a JupyterHub for a lab room on this machine (see README: Teaching a class on one server)"
# /instructors-only

# 1. venv  2. pinned packages  3. course_lib editable  4. a named Jupyter kernel
# 5. a JupyterLab setting that stops the news pop-up (offline it only gets in the way).
$(STAMP): requirements/lock.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Loss & Scaling (course)" >/dev/null
	@mkdir -p $(VENV)/share/jupyter/lab/settings
	@echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' \
		> $(VENV)/share/jupyter/lab/settings/overrides.json
	@touch $(STAMP)
	@echo "environment ready in $(VENV)"

env: $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=$(PORT) \
		--ServerApp.root_dir="$(CURDIR)" \
		--LabApp.default_url=/lab/tree/notebooks/00_welcome.ipynb $(ROOT_FLAG)

# Lecture mode: one lesson (NB=03) as a code-free page with live panels, or without NB a gallery of every
# lesson; Voila on 127.0.0.1 with a secret token in the printed address (as make lab), projector theme.
# PORT defaults to 8866 here (Voila's), so a running `make lab` on 8888 is not in the way.
present: $(STAMP)
	$(BIN)/python -m course_lib.ui.present $(NB) --port $(if $(filter command line environment,$(origin PORT)),$(PORT),8866)

# Two workers (pytest-xdist; JOBS=0 runs in one process): most of the suite's time is a notebook kernel
# or a grading child working while the test waits, so one process leaves a core idle. Each file's tests
# stay on one worker and the long ones go first (tests/conftest.py says why). --durations: the slowest
# tests are listed at the end, to keep the suite inside its 30 minutes on 2 cores.
JOBS ?= 2
XDIST = $(if $(filter 0,$(JOBS)),,-n $(JOBS) --dist loadgroup --no-loadscope-reorder)
test: $(STAMP)
	$(BIN)/python -m pytest $(XDIST) --durations=30

test-fast: $(STAMP)
	$(BIN)/python -m pytest $(XDIST) -m "not slow and not browser"

# instructors-only
# exercises/ is generated, never edited: each solution block of solutions/*.ipynb becomes
# `raise NotImplementedError("Exercise N.M: ...")`; the suite fails if the two drift apart.
exercises: $(STAMP)
	$(BIN)/python -m course_lib.grading assign

# One sandboxed child per submission (bubblewrap when it works here, else the weaker audit hook: the
# first line printed says which), forked from a warm zygote per core; student files are never modified.
OUT      ?= gradebook.csv
FEEDBACK ?= feedback
grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=dir [OUT=gradebook.csv] [FEEDBACK=feedback]" >&2; exit 2; }
	$(BIN)/python -m course_lib.grading grade "$(SUBMISSIONS)" --out "$(OUT)" --feedback "$(FEEDBACK)"

# The students' edition (what students clone): notebooks, course_lib, exercises, shipped grading tests,
# set-up files and a README for students; never solutions/, grading/hidden/ or an answer (checked).
release: $(STAMP)
	@test -n "$(OUT)" -a "$(OUT)" != "gradebook.csv" || { echo "usage: make release OUT=dir" >&2; exit 2; }
	$(BIN)/python -m course_lib.grading release "$(OUT)"

# Regenerate the lock in a throw-away venv. torch 2.13.0 is installed first so that nothing
# else can pull a different torch (or gigabytes of CUDA packages).
lock:
	rm -rf /tmp/course-lock-venv && $(PYTHON) -m venv /tmp/course-lock-venv
	/tmp/course-lock-venv/bin/pip install --quiet torch==2.13.0
	/tmp/course-lock-venv/bin/pip install --quiet -r requirements/course.txt -r requirements/dev.txt
	{ echo "# Generated by 'make lock' from requirements/course.txt and requirements/dev.txt: do not edit by hand."; \
	  echo "# Every student and CI get exactly these versions. torch is pinned to 2.13.0, not 2.13.0+cpu"; \
	  echo "# (that local version label is not on the public index)."; \
	  /tmp/course-lock-venv/bin/pip freeze --all --exclude pip | grep -v '^-e' | sed 's/+cpu$$//'; } > requirements/lock.txt
# /instructors-only

# A JupyterHub for a room: its proxy (configurable-http-proxy, from npm) lives in .venv/hub, pinned;
# settings come from COURSE_HUB_* variables, documented in hub/jupyterhub_config.py.
CHP_VERSION := 5.3.0
CHP := $(VENV)/hub/node_modules/.bin/configurable-http-proxy
$(CHP):
	npm install --silent --no-fund --no-audit --prefix $(VENV)/hub configurable-http-proxy@$(CHP_VERSION)

hub-proxy: $(CHP)

# Every hub student's exercise notebooks -> SUBMISSIONS/<student>/ (then: make grade SUBMISSIONS=...).
# Needs an admin token of the hub: COURSE_HUB_TOKEN=... make collect SUBMISSIONS=submissions
HOMES ?= /home/{username}
collect: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: COURSE_HUB_TOKEN=... make collect SUBMISSIONS=dir [HOMES=/home/{username}]" >&2; exit 2; }
	$(BIN)/python -m course_lib.grading collect "$(SUBMISSIONS)" --homes "$(HOMES)"

hub: $(STAMP) $(CHP)
	PATH="$(CURDIR)/$(VENV)/hub/node_modules/.bin:$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyterhub -f hub/jupyterhub_config.py

clean-env:
	rm -rf $(VENV)
