"""Built-in augmentations: rotation, cutout, mixup, feature_dropout, token_dropout."""

from __future__ import annotations

import pytest
import torch

from automl.plugin_manager import BUILTIN_PLUGINS, load_plugins

MODULES = {
    "rotation": "automl_plugins.augmentations.rotation",
    "cutout": "automl_plugins.augmentations.cutout",
    "mixup": "automl_plugins.augmentations.mixup",
    "feature_dropout": "automl_plugins.augmentations.feature_dropout",
    "token_dropout": "automl_plugins.augmentations.token_dropout",
}


@pytest.fixture(scope="module")
def registry():
    extra = [m for m in MODULES.values() if m not in BUILTIN_PLUGINS]
    return load_plugins(extra, autoload=False).registry


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def one_hot(n: int, classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.arange(n) % classes, classes).float()


def images(n: int = 16, c: int = 3, h: int = 12, w: int = 12) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=gen(123)) + 0.5  # no zeros: cutout is visible


def tokens(n: int = 256, length: int = 48) -> torch.Tensor:
    """[CLS]=101 at position 0, ids 1000..1999, then padding (0) of random length per row."""
    ids = torch.randint(1000, 2000, (n, length), generator=gen(7))
    ids[:, 0] = 101
    lengths = torch.randint(2, length + 1, (n,), generator=gen(8))
    ids[torch.arange(length)[None, :] >= lengths[:, None]] = 0
    return ids


CASES = {  # name -> (x, params that change every example)
    "rotation": (lambda: images(), {"max_degrees": 30.0, "p": 1.0}),
    "cutout": (lambda: images(), {"size": 3, "p": 1.0}),
    "mixup": (lambda: torch.randn(16, 5, generator=gen(1)), {"alpha": 0.4}),
    "feature_dropout": (lambda: torch.randn(16, 20, generator=gen(2)), {"p": 0.3}),
    "token_dropout": (lambda: tokens(16), {"p": 0.3, "mask_token_id": 100}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_registered_with_valid_defaults(registry, name):
    entry = registry.get("augmentation", name)
    assert entry.plugin == MODULES[name]
    assert entry.cls.description
    expected_kinds = {"rotation": {"image"}, "cutout": {"image"}, "mixup": {"image", "tabular"},
                      "feature_dropout": {"tabular"}, "token_dropout": {"text"}}[name]
    assert set(entry.cls.data_kinds) == expected_kinds
    assert entry.cls.defaults()  # every one declares a default search space


@pytest.mark.parametrize("name", sorted(CASES))
def test_shapes_dtypes_and_determinism(registry, name):
    make_x, params = CASES[name]
    aug = registry.create("augmentation", name)
    x = make_x()
    y = one_hot(len(x), 4)
    x_in, y_in = x.clone(), y.clone()
    x1, y1 = aug.apply(x, y, params, gen(5))
    assert x1.shape == x.shape and x1.dtype == x.dtype
    assert y1.shape == y.shape and y1.dtype == y.dtype
    assert torch.equal(x, x_in) and torch.equal(y, y_in)  # inputs are not modified in place
    assert not torch.equal(x1, x)
    x2, y2 = aug.apply(x, y, params, gen(5))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    x3, _ = aug.apply(x, y, params, gen(6))
    assert not torch.equal(x1, x3)


# --- rotation ----------------------------------------------------------------------------------

def test_rotation_by_zero_is_identity_and_by_90_is_rot90():
    from automl_plugins.augmentations.rotation import rotate

    x = images(4, 2, 9, 9)
    assert torch.allclose(rotate(x, torch.zeros(4)), x, atol=1e-6)
    assert torch.allclose(rotate(x, torch.full((4,), 90.0)), torch.rot90(x, 1, dims=(2, 3)),
                          atol=1e-5)
    assert torch.allclose(rotate(x, torch.full((4,), -90.0)), torch.rot90(x, -1, dims=(2, 3)),
                          atol=1e-5)
    mixed = rotate(x, torch.tensor([0.0, 90.0, 180.0, 270.0]))
    for k in range(4):
        assert torch.allclose(mixed[k], torch.rot90(x[k], k, dims=(1, 2)), atol=1e-5)


def test_rotation_is_rigid_on_non_square_images():
    from automl_plugins.augmentations.rotation import rotate

    x = torch.zeros(1, 1, 5, 9)
    x[0, 0, 2, 6] = 1.0  # two pixels right of the centre (2, 4)
    out = rotate(x, torch.tensor([90.0]))
    assert out[0, 0, 0, 4] == pytest.approx(1.0, abs=1e-5)  # two pixels above it
    assert out.sum() == pytest.approx(1.0, abs=1e-5)


def test_rotation_p_and_zero_degrees(registry):
    aug = registry.create("augmentation", "rotation")
    x, y = images(400, 1, 8, 8), one_hot(400, 4)
    out, _ = aug.apply(x, y, {"max_degrees": 0.0, "p": 1.0}, gen())
    assert torch.equal(out, x)
    out, _ = aug.apply(x, y, {"max_degrees": 20.0, "p": 0.25}, gen())
    changed = (out != x).flatten(1).any(dim=1).float().mean().item()
    assert 0.15 < changed < 0.35


# --- cutout ------------------------------------------------------------------------------------

def test_cut_zeros_exactly_size_squared_pixels_when_inside():
    from automl_plugins.augmentations.cutout import cut

    x = torch.ones(3, 2, 10, 10)
    out = cut(x, torch.tensor([0, 3, 6]), torch.tensor([6, 2, 0]), 4)
    assert ((out == 0).sum(dim=(2, 3)) == 16).all()  # every channel of every image
    assert (out[1, :, 3:7, 2:6] == 0).all()
    clipped = cut(x, torch.tensor([-2, 8, 20]), torch.tensor([-2, 8, 0]), 4)
    assert (clipped == 0).sum(dim=(1, 2, 3)).tolist() == [2 * 4, 2 * 4, 0]


def test_cutout_apply_zeros_one_square_per_image(registry):
    aug = registry.create("augmentation", "cutout")
    size = 4
    x = torch.ones(200, 1, 16, 16)
    out, _ = aug.apply(x, one_hot(200, 4), {"size": size, "p": 1.0}, gen())
    full = 0
    for image in (out[:, 0] == 0):
        rows = image.any(dim=1).nonzero().flatten()
        cols = image.any(dim=0).nonzero().flatten()
        assert len(rows) and len(cols)
        height, width = len(rows), len(cols)
        assert height <= size and width <= size
        assert int(image.sum()) == height * width  # one solid rectangle
        assert rows.max() - rows.min() + 1 == height and cols.max() - cols.min() + 1 == width
        inside = rows.min() > 0 and cols.min() > 0 and rows.max() < 15 and cols.max() < 15
        if inside:  # away from the border: nothing can have been clipped
            assert height == width == size
        full += height == width == size
    assert full > 80  # centres are uniform: about (13/16)^2 of the squares fit
    same, _ = aug.apply(x, one_hot(200, 4), {"size": size, "p": 0.0}, gen())
    assert torch.equal(same, x)


# --- mixup -------------------------------------------------------------------------------------

def test_mixup_is_a_convex_combination_of_inputs_and_targets(registry):
    aug = registry.create("augmentation", "mixup")
    n = 32
    # Example i is the basis vector e_i and has class i, so x and y must be mixed identically.
    x, y = torch.eye(n), torch.eye(n)
    x_mixed, y_mixed = aug.apply(x, y, {"alpha": 0.4}, gen(3))
    assert torch.allclose(y_mixed.sum(dim=1), torch.ones(n), atol=1e-6)
    assert (y_mixed >= 0).all() and (y_mixed <= 1).all()
    assert torch.allclose(x_mixed, y_mixed, atol=1e-6)
    for i in range(n):
        support = (y_mixed[i] > 1e-7).nonzero().flatten().tolist()
        assert 1 <= len(support) <= 2
        if len(support) == 2:
            assert i in support  # own example plus one partner
    partners = [j for i in range(n) for j in (y_mixed[i] > 1e-7).nonzero().flatten().tolist()
                if j != i]
    assert len(partners) > n // 2  # most rows really are mixed


def test_mixup_mixes_images_with_per_example_weights(registry):
    aug = registry.create("augmentation", "mixup")
    n = 8
    x = torch.arange(n, dtype=torch.float32)[:, None, None, None].expand(n, 3, 4, 4).clone()
    y = torch.eye(n)
    x_mixed, y_mixed = aug.apply(x, y, {"alpha": 1.0}, gen(4))
    expected = y_mixed @ torch.arange(n, dtype=torch.float32)  # the same weights on the values
    assert torch.allclose(x_mixed, expected[:, None, None, None].expand_as(x), atol=1e-5)


def test_mixup_small_alpha_barely_mixes(registry):
    aug = registry.create("augmentation", "mixup")
    _, y_mixed = aug.apply(torch.eye(400), torch.eye(400), {"alpha": 0.05}, gen())
    assert y_mixed.max(dim=1).values.median() > 0.95


# --- feature_dropout ---------------------------------------------------------------------------

def test_feature_dropout_zeros_about_p_and_keeps_the_rest(registry):
    aug = registry.create("augmentation", "feature_dropout")
    x = torch.randn(500, 40, generator=gen(9)) + 10.0  # no zeros to start with
    out, _ = aug.apply(x, one_hot(500, 3), {"p": 0.2}, gen())
    dropped = out == 0
    assert 0.18 < dropped.float().mean().item() < 0.22
    assert torch.equal(out[~dropped], x[~dropped])
    same, _ = aug.apply(x, one_hot(500, 3), {"p": 0.0}, gen())
    assert torch.equal(same, x)


# --- token_dropout -----------------------------------------------------------------------------

def test_token_dropout_masks_about_p_of_real_tokens_only(registry):
    aug = registry.create("augmentation", "token_dropout")
    x = tokens()
    out, _ = aug.apply(x, one_hot(len(x), 2), {"p": 0.15, "mask_token_id": 103}, gen())
    assert out.dtype == torch.int64
    padding = x == 0
    assert torch.equal(out[padding], x[padding])
    assert torch.equal(out[:, 0], x[:, 0])
    changed = out != x
    assert (out[changed] == 103).all()
    eligible = ~padding
    eligible[:, 0] = False
    fraction = (changed & eligible).sum().item() / eligible.sum().item()
    assert 0.13 < fraction < 0.17


def test_token_dropout_default_mask_id_is_100(registry):
    entry = registry.get("augmentation", "token_dropout")
    assert entry.cls.params["mask_token_id"].default.value == 100
