"""Tests of course_lib.data: shapes, determinism, known truths, baselines, error messages."""

import math

import pytest
import torch

from course_lib.data import DataSplit, make_classification, make_regression

ALL_KINDS = [
    (make_regression, "linear"),
    (make_regression, "polynomial"),
    (make_classification, "moons"),
    (make_classification, "circles"),
    (make_classification, "spirals"),
]


def _all_tensors(data: DataSplit):
    return [data.X_train, data.y_train, data.X_val, data.y_val]


# ---- shapes, dtypes, split sizes ---------------------------------------------------------------


@pytest.mark.parametrize("n_features", [1, 3])
def test_regression_shapes_and_dtypes(n_features):
    data = make_regression(50, n_features=n_features, val_fraction=0.2)
    assert data.X_train.shape == (40, n_features) and data.X_val.shape == (10, n_features)
    assert data.y_train.shape == (40, 1) and data.y_val.shape == (10, 1)
    assert all(t.dtype == torch.float32 and t.device.type == "cpu" for t in _all_tensors(data))
    assert (data.n_train, data.n_val) == (40, 10)
    assert data.X_train.abs().max() <= 1.0  # uniform in [-1, 1]


@pytest.mark.parametrize("kind,n_classes", [("moons", 2), ("circles", 2), ("spirals", 2), ("spirals", 5)])
def test_classification_shapes_dtypes_and_balance(kind, n_classes):
    data = make_classification(403, kind=kind, n_classes=n_classes)
    assert data.X_train.shape[1] == 2 and data.X_train.dtype == torch.float32
    assert data.y_train.ndim == 1 and data.y_train.dtype == torch.int64
    counts = torch.bincount(torch.cat([data.y_train, data.y_val]), minlength=n_classes)
    assert counts.sum() == 403 and counts.max() - counts.min() <= 1  # balanced


@pytest.mark.parametrize(
    "n,val_fraction,n_val", [(200, 0.2, 40), (10, 0.25, 2), (100, 0.001, 1), (10, 0.99, 9), (20, 0.0, 0)]
)
def test_split_sizes(n, val_fraction, n_val):
    data = make_regression(n, val_fraction=val_fraction)
    assert (data.n_train, data.n_val) == (n - n_val, n_val)


def test_split_is_a_partition_of_the_data():
    # At noise 0 the clean circle points are known: train + val must be all of them, once each.
    data = make_classification(40, kind="circles", noise=0.0)
    X = torch.cat([data.X_train, data.X_val])
    radius = X.norm(dim=1)
    assert len(torch.unique(X, dim=0)) == 40
    assert torch.allclose(radius.sort().values, torch.tensor([0.5] * 20 + [1.0] * 20), atol=1e-6)


# ---- determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize("make,kind", ALL_KINDS)
def test_same_seed_same_data_different_seed_different_data(make, kind):
    a, b, c = make(kind=kind, seed=3), make(kind=kind, seed=3), make(kind=kind, seed=4)
    assert all(torch.equal(s, t) for s, t in zip(_all_tensors(a), _all_tensors(b)))
    assert not torch.equal(a.X_train, c.X_train)


def test_global_rng_is_untouched():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    make_regression(seed=1), make_classification(seed=1)
    assert torch.equal(torch.rand(3), expected)


def test_noise_level_does_not_change_the_true_function():
    a, b = make_regression(kind="polynomial", noise=0.0), make_regression(kind="polynomial", noise=0.5)
    assert torch.equal(a.info["coefficients"], b.info["coefficients"])
    assert torch.equal(a.X_train, b.X_train)


# ---- known truths ------------------------------------------------------------------------------


def test_noiseless_linear_regression_is_recovered_by_least_squares():
    data = make_regression(100, n_features=3, noise=0.0, seed=1)
    X = torch.cat([data.X_train, torch.ones(data.n_train, 1)], dim=1).double()  # (N, D + 1)
    coef = torch.linalg.lstsq(X, data.y_train.double()).solution.squeeze(1)  # oracle
    assert torch.allclose(coef[:3], data.info["w"].double(), atol=1e-5)
    assert abs(coef[3].item() - data.info["b"]) < 1e-5


def _true_f(data: DataSplit, X: torch.Tensor) -> torch.Tensor:
    if data.info["kind"] == "linear":
        return X @ data.info["w"] + data.info["b"]
    c = data.info["coefficients"]
    return X[:, :1] ** torch.arange(len(c)) @ c


@pytest.mark.parametrize("kind", ["linear", "polynomial"])
@pytest.mark.parametrize("noise", [0.05, 0.3])
def test_residual_std_of_true_function_is_the_noise(kind, noise):
    data = make_regression(20_000, kind=kind, noise=noise, n_features=1, seed=2)
    residual = data.y_train.squeeze(1) - _true_f(data, data.X_train)
    # std of a sample std is about noise / sqrt(2N) = 0.5% here: 3% is a wide margin.
    assert residual.std().item() == pytest.approx(noise, rel=0.03)
    assert data.info["irreducible_mse"] == pytest.approx(noise**2)


def test_polynomial_signal_has_std_about_one():
    for seed in range(5):
        data = make_regression(5000, kind="polynomial", degree=4, noise=0.0, seed=seed)
        assert 0.9 < data.y_train.std().item() < 1.1


def test_moons_geometry_at_noise_zero():
    data = make_classification(200, kind="moons", noise=0.0)
    X, y = torch.cat([data.X_train, data.X_val]), torch.cat([data.y_train, data.y_val])
    # Class 0 lies on the unit upper half circle, class 1 on the unit circle around (1, 0.5).
    assert torch.allclose(X[y == 0].norm(dim=1), torch.ones(100), atol=1e-5)
    assert (X[y == 0, 1] >= -1e-6).all()
    assert torch.allclose((X[y == 1] - torch.tensor([1.0, 0.5])).norm(dim=1), torch.ones(100), atol=1e-5)


def test_circles_radii_differ_by_factor_one_half():
    data = make_classification(400, kind="circles", noise=0.0)
    radius = data.X_train.norm(dim=1)
    assert torch.allclose(radius[data.y_train == 0], torch.tensor(1.0), atol=1e-6)
    assert torch.allclose(radius[data.y_train == 1], torch.tensor(0.5), atol=1e-6)


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_spiral_arms_are_rotated_copies(n_classes):
    data = make_classification(100 * n_classes, kind="spirals", n_classes=n_classes, noise=0.0)
    X, y = torch.cat([data.X_train, data.X_val]), torch.cat([data.y_train, data.y_val])
    assert X.norm(dim=1).max() <= 1.0 + 1e-6 and X.norm(dim=1).min() > 0
    # Rotating arm 0 by 2 pi j / K gives arm j (compare the sorted radii and the outermost point).
    angle = 2 * math.pi / n_classes
    rot = torch.tensor([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
    outer = [X[y == j][X[y == j].norm(dim=1).argmax()] for j in range(n_classes)]
    for j in range(n_classes - 1):
        # points are (r sin t, r cos t): adding `angle` to t is this rotation
        assert torch.allclose(outer[j] @ rot.T, outer[j + 1], atol=1e-5)


def test_noise_is_the_std_of_the_jitter():
    clean = make_classification(4000, kind="circles", noise=0.0, seed=5)
    noisy = make_classification(4000, kind="circles", noise=0.05, seed=5)
    jitter = torch.cat([noisy.X_train, noisy.X_val]) - torch.cat([clean.X_train, clean.X_val])
    assert jitter.std().item() == pytest.approx(0.05, rel=0.05)


# ---- baselines, device, repr, re-export -------------------------------------------------------


def test_mse_baseline_is_the_closed_form():
    data = make_regression(500, noise=0.2, seed=1)
    expected = ((data.y_val - data.y_train.mean()) ** 2).mean().item()
    assert data.baseline_loss("mse") == pytest.approx(expected, rel=1e-6)
    assert data.baseline_loss() == data.baseline_loss("mse")  # inferred from float targets
    # = variance of y_val + squared shift of the means
    var = data.y_val.var(unbiased=False).item()
    shift = (data.y_val.mean() - data.y_train.mean()).item() ** 2
    assert data.baseline_loss("mse") == pytest.approx(var + shift, rel=1e-5)


@pytest.mark.parametrize("kind", ["moons", "circles", "spirals"])
def test_cross_entropy_baseline_is_the_entropy_of_the_prior(kind):
    data = make_classification(400, kind=kind, seed=2)
    p1 = data.y_train.sum().item() / data.n_train  # training frequency of class 1
    n1 = data.y_val.sum().item()
    expected = -(n1 * math.log(p1) + (data.n_val - n1) * math.log(1 - p1)) / data.n_val
    assert data.baseline_loss("cross_entropy") == pytest.approx(expected, rel=1e-9)
    assert data.baseline_loss() == pytest.approx(math.log(2), abs=0.01)  # balanced binary


def test_cross_entropy_baseline_for_k_balanced_classes_is_log_k():
    data = make_classification(1000, kind="spirals", n_classes=4, seed=0)
    assert data.baseline_loss() == pytest.approx(math.log(4), abs=0.01)


def test_device_argument_and_to():
    data = make_regression(20, device="cpu")
    assert all(t.device.type == "cpu" for t in _all_tensors(data))
    moved = data.to(torch.device("cpu"))
    assert moved is not data and torch.equal(moved.X_train, data.X_train) and moved.info == data.info


def test_repr_is_short_and_shows_shapes():
    text = repr(make_classification(100, kind="moons"))
    assert "moons" in text and "(80, 2)" in text and "(20,)" in text and len(text) < 200



# ---- error messages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(n_samples=1), ValueError, r"make_regression\(\): 'n_samples' must be an int in \[2, 10000000\], got n_samples=1"),
        (dict(n_samples=2.5), TypeError, r"'n_samples' must be an int in \[2, 10000000\]"),
        (dict(kind="cubic"), ValueError, r"'kind' must be one of 'linear', 'polynomial', got kind='cubic'"),
        (dict(n_features=0), ValueError, r"'n_features' must be an int in \[1, 10000\], got n_features=0"),
        (dict(kind="polynomial", n_features=2), ValueError, r"'n_features' must be 1 when kind='polynomial'"),
        (dict(degree=0), ValueError, r"'degree' must be an int in \[1, 50\], got degree=0"),
        (dict(noise=-0.1), ValueError, r"'noise' must be a float >= 0, got noise=-0.1"),
        (dict(val_fraction=1.0), ValueError, r"'val_fraction' must be a float in \[0, 1\), got val_fraction=1.0"),
        (dict(seed=-1), ValueError, r"'seed' must be an int in \[0, 9223372036854775807\], got seed=-1"),
        (dict(device="nonsense"), ValueError, r"'device' must be one of"),
    ],
)
def test_make_regression_messages(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_regression(**kwargs)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(n_samples=3), ValueError, r"make_classification\(\): 'n_samples' must be an int in \[4, 10000000\], got n_samples=3"),
        (dict(kind="blobs"), ValueError, r"'kind' must be one of 'moons', 'circles', 'spirals', got kind='blobs'"),
        (dict(noise=-1.0), ValueError, r"'noise' must be a float >= 0, got noise=-1.0"),
        (dict(noise="high"), TypeError, r"'noise' must be a float >= 0"),
        (dict(kind="spirals", n_classes=6), ValueError, r"'n_classes' must be an int in \[2, 5\], got n_classes=6"),
        (dict(kind="moons", n_classes=3), ValueError, r"'n_classes' must be 2 when kind='moons'"),
        (dict(kind="circles", n_classes=3), ValueError, r"'n_classes' must be 2 when kind='circles'"),
        (dict(val_fraction=-0.1), ValueError, r"'val_fraction' must be a float in \[0, 1\), got val_fraction=-0.1"),
        (dict(seed=1.5), TypeError, r"'seed' must be an int in \[0, 9223372036854775807\]"),
    ],
)
def test_make_classification_messages(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_classification(**kwargs)


def test_baseline_loss_messages():
    regression, classification = make_regression(20), make_classification(20)
    with pytest.raises(ValueError, match=r"baseline_loss\(\): 'kind' must be one of 'mse', 'cross_entropy'"):
        regression.baseline_loss("mae")
    with pytest.raises(ValueError, match=r"kind='cross_entropy' needs int64 labels"):
        regression.baseline_loss("cross_entropy")
    with pytest.raises(ValueError, match=r"kind='mse' needs float targets"):
        classification.baseline_loss("mse")
    with pytest.raises(ValueError, match=r"must have a validation set, got n_val=0"):
        make_regression(20, val_fraction=0.0).baseline_loss()
