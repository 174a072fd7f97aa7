"""The lesion stage's own settings (``Profile.stage``), its loss, its batches and its prior.

The lesion networks start from the liver's settings and change what the ``lesion`` section
sets: the view's input size, widths, training, sampling, loss, the prior's boxes.
"""

import json

import numpy as np
import pytest

from liverseg import config
from liverseg.prior import component_boxes, roi_prior
from liverseg.train.slices import balanced_order


# ---------------------------------------------------------------------------- settings


def test_the_lesion_section_changes_the_lesion_stage_only():
    base = config.profile("smoke")
    settings = base.replace(**{"lesion.image_size": 32, "lesion.base_filters": 4,
                               "lesion.positive_weight": 10.0, "lesion.dice_over": "batch",
                               "lesion.positive_share": 0.5, "lesion.learning_rate": 1e-3,
                               "lesion.prior_folds": 3})
    lesion = settings.stage("lesion")
    assert lesion.image_size == lesion.localization.image_size == lesion.tuning.image_size == 32
    assert lesion.localization.base_filters == lesion.tuning.base_filters == 4
    assert (lesion.train.positive_weight, lesion.train.dice_over) == (10.0, "batch")
    assert (lesion.train.positive_share, lesion.train.learning_rate) == (0.5, 1e-3)
    assert lesion.train.prior_folds == 3 and settings.stage("liver").train.prior_folds == 1
    assert (lesion.prior.mode, lesion.prior.keep_largest) == ("boxes", False)
    assert lesion.stage("lesion") == lesion  # applied once, nothing left to apply
    # the liver stage depends on no lesion setting, so its store keys do not move
    assert settings.stage("liver") == base.stage("liver")
    assert settings.stage("liver").image_size == 64 and settings.stage("liver").prior.mode == "bbox"


def test_the_lesion_section_round_trips_and_an_old_tree_keeps_its_lesion_stage():
    settings = config.profile("demo").replace(**{"lesion.image_size": 128,
                                                 "lesion.synthesis.share": 0.9})
    again = config.Profile.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert again == settings and again.stage("lesion") == settings.stage("lesion")
    old = settings.to_dict()
    del old["lesion"]  # a tree saved before the section existed
    stage = config.Profile.from_dict(old).stage("lesion")
    assert stage.image_size == 64 and stage.prior.mode == "bbox" and stage.prior.keep_largest


@pytest.mark.parametrize("changes, message", [
    ({"lesion.image_size": 100}, "lesion section: localization.image_size=100"),
    ({"lesion.dice_over": "pixel"}, "dice_over"),
    ({"lesion.positive_share": 1.5}, "positive_share"),
    ({"lesion.prior_mode": "circle"}, "prior_mode"),
    ({"lesion.prior_folds": 0}, "prior_folds"),
])
def test_a_bad_lesion_setting_is_refused_with_its_name(changes, message):
    with pytest.raises(ValueError, match=message):
        config.profile("smoke").replace(**changes)


# ---------------------------------------------------------------------------- loss


def _numpy_bce_dice(y, p, weight, over):
    eps = 1e-7
    p = np.clip(p, eps, 1 - eps)
    bce = -(weight * y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=(1, 2, 3))
    if over == "batch":
        dice = 1 - (2 * (y * p).sum() + 1) / (y.sum() + p.sum() + 1)
        dice = np.full(len(y), dice)
    else:
        dice = 1 - (2 * (y * p).sum(axis=(1, 2, 3)) + 1) / (
            y.sum(axis=(1, 2, 3)) + p.sum(axis=(1, 2, 3)) + 1)
    return float((bce + dice).mean())


@pytest.mark.keras
@pytest.mark.parametrize("weight, over", [(1.0, "sample"), (10.0, "sample"), (10.0, "batch")])
def test_the_weighted_batch_loss_is_what_its_formula_says(weight, over):
    import keras

    from liverseg.losses import BceDiceLoss

    rng = np.random.default_rng(0)
    y = (rng.random((3, 8, 8, 1)) < 0.05).astype(np.float32)
    y[2] = 0  # a slice without foreground
    p = rng.uniform(0.01, 0.99, y.shape).astype(np.float32)
    loss = BceDiceLoss(positive_weight=weight, dice_over=over)
    value = float(keras.ops.convert_to_numpy(loss(y, p)))
    assert value == pytest.approx(_numpy_bce_dice(y, p, weight, over), rel=1e-4)
    restored = BceDiceLoss.from_config(loss.get_config())
    assert (restored.positive_weight, restored.dice_over) == (weight, over)


@pytest.mark.keras
def test_the_small_lesion_weight_raises_the_weight_of_small_lesions_only():
    import keras
    from scipy import ndimage

    from liverseg.losses import SMALL_WINDOW, BceDiceLoss, small_lesion_weights

    y = np.zeros((1, 64, 64, 1), np.float32)
    y[0, 4:6, 4:6] = 1  # a lesion of 4 pixels
    y[0, 16:60, 16:60] = 1  # and one of 1,936
    weight = keras.ops.convert_to_numpy(small_lesion_weights(y, 10.0, 4.0))[0, ..., 0]
    def window_sum(x):
        return ndimage.uniform_filter(x, SMALL_WINDOW, mode="constant")

    share = window_sum(y[0, ..., 0]) / window_sum(np.ones((64, 64), np.float32))  # pixels inside
    inside = y[0, ..., 0] > 0
    np.testing.assert_allclose(weight[inside], 10.0 * (1 + 4.0 * (1 - share[inside])), rtol=1e-4)
    assert weight[5, 5] > 45 and weight[38, 38] == pytest.approx(10.0)
    # the loss: the formula with that weight map; 0 is the uniform weight, bit for bit
    p = np.random.default_rng(0).uniform(0.01, 0.99, y.shape).astype(np.float32)
    small = BceDiceLoss(positive_weight=10.0, dice_over="batch", small_weight=4.0)
    value = float(keras.ops.convert_to_numpy(small(y, p)))
    expected = _numpy_bce_dice(y, p, weight[None, ..., None], "batch")
    assert value == pytest.approx(expected, rel=1e-4)
    uniform = BceDiceLoss(positive_weight=10.0, dice_over="batch", small_weight=0.0)
    assert float(keras.ops.convert_to_numpy(uniform(y, p))) == pytest.approx(
        _numpy_bce_dice(y, p, 10.0, "batch"), rel=1e-5)
    assert BceDiceLoss.from_config(small.get_config()).small_weight == 4.0
    with pytest.raises(ValueError, match="small_weight"):
        BceDiceLoss(small_weight=-1.0)


def test_the_small_lesion_weight_is_a_lesion_setting_keyed_only_when_used():
    from liverseg.config.stages import stage_tree

    base = config.profile("smoke")
    settings = base.replace(**{"lesion.small_lesion_weight": 4.0})
    assert settings.stage("lesion").train.small_lesion_weight == 4.0
    assert settings.stage("liver") == base.stage("liver")
    assert "small_lesion_weight" not in stage_tree(base.stage("lesion"), "tuner")["train"]
    assert stage_tree(settings.stage("lesion"), "localizer")["train"]["small_lesion_weight"] == 4.0
    # the localizer's loss weighs the small lesions; the tuner's stays uniform
    from liverseg.losses import localization_loss, tuning_losses

    train = settings.stage("lesion").train
    assert localization_loss(train).small_weight == 4.0
    assert {loss.small_weight for loss in tuning_losses(train, 3).values()} == {0.0}


def test_the_lesion_prior_margin_is_the_lesion_stages_own():
    from liverseg.config.stages import stage_tree

    base = config.profile("smoke")
    assert base.stage("lesion").prior.margin == base.prior.margin  # unset: the liver's
    settings = base.replace(**{"lesion.prior_margin": 7})
    assert settings.stage("lesion").prior.margin == 7
    assert settings.stage("liver") == base.stage("liver")
    assert stage_tree(settings.stage("lesion"), "localizer") != stage_tree(base.stage("lesion"), "localizer")


# ---------------------------------------------------------------------------- batches


def test_every_batch_holds_the_asked_share_of_lesion_slices():
    present = np.zeros(200, bool)
    present[[3, 50, 51, 120, 199]] = True  # 5 lesion slices among 200
    order = balanced_order(present, batch_size=8, share=0.5, seed=1, epoch=0)
    assert order.shape == (200,)
    for start in range(0, 200, 8):
        assert present[order[start:start + 8]].sum() == 4
    # drawn with (seed, epoch): the same again, another epoch another order
    np.testing.assert_array_equal(order, balanced_order(present, 8, 0.5, 1, 0))
    assert not np.array_equal(order, balanced_order(present, 8, 0.5, 1, 1))
    # every negative slice is still met over the epochs, every positive one each epoch
    assert set(order[present[order]]) == {3, 50, 51, 120, 199}
    none = balanced_order(np.zeros(20, bool), 8, 0.5, 0, 0)
    assert sorted(none) == list(range(20))


def test_fit_reads_the_sampled_order(tmp_path):
    from liverseg.train.cascade import epoch_sampler

    settings = config.profile("smoke").replace(**{"train.positive_share": 0.25})
    labels = np.zeros((16, 4, 4), np.uint8)
    labels[:2, 1, 1] = 2
    sampler = epoch_sampler(labels, "lesion", settings)
    order = sampler(3)
    np.testing.assert_array_equal(order, balanced_order(labels[:, 1, 1] == 2, 8, 0.25, 0, 3))
    assert epoch_sampler(labels, "lesion", config.profile("smoke")) is None


# ---------------------------------------------------------------------------- prior


def test_the_boxes_prior_keeps_a_box_around_each_lesion():
    mask = np.zeros((32, 32), bool)
    mask[2:5, 2:5] = True
    mask[20:30, 22:28] = True
    boxes = component_boxes(mask, margin=1)
    assert boxes[1:6, 1:6].all() and boxes[19:31, 21:29].all()
    assert boxes.sum() == 25 + 12 * 8  # two boxes, not one over the liver between them
    probability = mask.astype(np.float32)
    largest = roi_prior(probability, mode="bbox", margin=1, use_crf=False)
    np.testing.assert_array_equal(largest[19:31, 21:29], 1.0)
    assert largest.sum() == 12 * 8  # the largest lesion's box alone
    spanning = roi_prior(probability, mode="bbox", margin=1, keep_largest=False, use_crf=False)
    assert spanning.sum() == 30 * 28  # one box over both and the liver between them
    both = roi_prior(probability, mode="boxes", margin=1, keep_largest=False, use_crf=False)
    np.testing.assert_array_equal(both, boxes.astype(np.float32))


# ---------------------------------------------------------------------------- synthesis


def _phantoms(n=3):
    from liverseg.datasets import synthetic

    return list(synthetic.iter_cases(n, seed=0, shape=(16, 48, 48),
                                     config=config.PhantomConfig.classic()))


def test_the_lesion_networks_learn_from_synthetic_copies_of_their_training_volumes():
    from liverseg.lesion_synthesis import source_case_id
    from liverseg.train.system import stage_cases

    cases = _phantoms()
    settings = config.profile("smoke").replace(**{"lesion.synthesis.share": 1.0,
                                                  "lesion.synthesis.copies": 2})
    stage = settings.stage("lesion")
    train = stage_cases(stage, "lesion", "train", cases)
    ids = [c.case_id for c in train]
    assert ids[:3] == [c.case_id for c in cases] and len(train) == 3 + 2 * 3
    assert ids[3:] == [f"{c.case_id}~synthetic{k}" for k in (1, 2) for c in cases]
    assert [source_case_id(i) for i in ids[3:]] == [c.case_id for c in cases] * 2
    for copy in train[3:]:
        source = cases[[c.case_id for c in cases].index(source_case_id(copy.case_id))]
        added = (copy.label == 2) & (source.label != 2)
        assert added.any() and (source.label[added] >= 1).all()  # new lesions, in the liver
    again = stage_cases(stage, "lesion", "train", cases)  # drawn with (split seed, copy, case)
    for a, b in zip(train, again):
        np.testing.assert_array_equal(a.image.array, b.image.array)
    # validation, test, the liver stage and share 0 see the volumes as they are
    assert stage_cases(stage, "lesion", "val", cases) is cases
    assert stage_cases(stage, "lesion", "test", cases) is cases
    # unless validation asks for lesions too: then the validation volumes get copies, never test
    checked = settings.replace(**{"lesion.synthesis.validation": True}).stage("lesion")
    val = stage_cases(checked, "lesion", "val", cases)
    assert [c.case_id for c in val] == ids
    assert stage_cases(checked, "lesion", "test", cases) is cases
    assert stage_cases(settings.stage("liver"), "liver", "train", cases) is cases
    plain = config.profile("smoke").stage("lesion")
    assert [c.case_id for c in stage_cases(plain, "lesion", "train", cases)] == ids[:3]


def test_per_epoch_draws_give_each_epoch_its_own_copy_and_validation_one():
    from liverseg.lesion_synthesis import copy_number, epoch_rows
    from liverseg.train.cascade import epoch_sampler
    from liverseg.train.system import stage_cases

    ids = np.array(["a", "b", "a~synthetic1", "b~synthetic1", "a~synthetic2", "b~synthetic2",
                    "a~synthetic3"], dtype=object)
    assert [copy_number(i) for i in ids] == [0, 0, 1, 1, 2, 2, 3]
    np.testing.assert_array_equal(epoch_rows(ids, 3, 0), [0, 1, 2, 3])
    np.testing.assert_array_equal(epoch_rows(ids, 3, 1), [0, 1, 4, 5])
    np.testing.assert_array_equal(epoch_rows(ids, 3, 5), [0, 1, 6])  # epoch 5: draw 3
    # without the originals (appearance draws): draw e % (copies + 1), the volume is draw 0
    np.testing.assert_array_equal(epoch_rows(ids, 3, 0, originals=False), [0, 1])
    np.testing.assert_array_equal(epoch_rows(ids, 3, 2, originals=False), [4, 5])
    np.testing.assert_array_equal(epoch_rows(ids, 3, 7, originals=False), [6])
    with pytest.raises(ValueError, match="copies"):
        epoch_rows(ids, 0, 1)
    # the sampler reads the epoch's rows only, lesion-rich as asked, the same on a rerun
    labels = np.zeros((len(ids), 4, 4), np.uint8)
    labels[2:, 1, 1] = 2  # the copies hold lesions, the volumes none
    settings = config.profile("smoke").replace(**{
        "lesion.synthesis.share": 1.0, "lesion.synthesis.copies": 3,
        "lesion.synthesis.per_epoch": True}).stage("lesion")
    sampler = epoch_sampler(labels, "lesion", settings, ids)
    for epoch in range(4):
        order = sampler(epoch)
        assert set(order) == set(epoch_rows(ids, 3, epoch)) and len(order) == len(set(order))
        np.testing.assert_array_equal(order, sampler(epoch))
    rich = epoch_sampler(labels, "lesion", settings.replace(**{"train.positive_share": 0.5}),
                         ids)(1)
    assert set(rich) <= {0, 1, 4, 5} and len(rich) == 4
    with pytest.raises(ValueError, match="case ids"):
        epoch_sampler(labels, "lesion", settings)
    assert epoch_sampler(labels, "liver", settings, ids) is None  # the liver has no copies
    # validation volumes get draw 1 alone: the best epoch is chosen on the same lesions
    cases = _phantoms(2)
    checked = settings.replace(**{"lesion.synthesis.validation": True})
    val = stage_cases(checked, "lesion", "val", cases)
    assert [copy_number(c.case_id) for c in val] == [0, 0, 1, 1]
    assert len(stage_cases(checked, "lesion", "train", cases)) == 2 + 3 * 2
    # no more draws are made than the epoch budget reads (smoke's lesion stage: 3 epochs)
    many = checked.replace(**{"lesion.synthesis.copies": 20})
    assert many.train.epochs == 3
    assert max(copy_number(c.case_id) for c in stage_cases(many, "lesion", "train", cases)) == 3


def test_per_epoch_draws_key_the_lesion_networks_only_when_on():
    from liverseg.train.store import front_key, tuner_key

    base = config.profile("demo").replace(**{"lesion.synthesis.per_epoch": False})
    stage = base.stage("lesion")
    on = base.replace(**{"lesion.synthesis.per_epoch": True}).stage("lesion")
    assert front_key(on) != front_key(stage) and tuner_key(on) != tuner_key(stage)
    # a tree saved before the setting existed reads back with it off, under the same keys
    tree = stage.to_dict()
    del tree["lesion"]["synthesis"]["per_epoch"]
    old = config.Profile.from_dict(tree)
    assert front_key(old) == front_key(stage) and tuner_key(old) == tuner_key(stage)
    with pytest.raises(ValueError, match="per_epoch"):
        config.profile("smoke").replace(**{"lesion.synthesis.per_epoch": 1})


#: the lesion section's fields in every stage's key when the first lesion stores were written
FIRST_KEYED_LESION_FIELDS = {
    "base_filters", "batch_size", "dice_over", "early_stopping_patience", "empty_slice_fraction",
    "epochs", "image_size", "learning_rate", "loss_scheme", "positive_share", "positive_weight",
    "prior_folds", "prior_keep_largest", "prior_mode", "synthesis"}


@pytest.mark.parametrize("structure", ["liver", "lesion"])
def test_a_lesion_override_added_later_leaves_every_stored_network_its_key(structure):
    # a stage's tree holds every override unset (applied to its target); one keyed while unset
    # would retrain every stored network, the liver's too, as three once did
    from liverseg.config.stages import stage_tree

    for name in ("demo", "smoke"):
        tree = stage_tree(config.profile(name).stage(structure), "rounds")
        assert set(tree["lesion"]) == FIRST_KEYED_LESION_FIELDS
    newer = set(config.LesionConfig.TARGETS) - FIRST_KEYED_LESION_FIELDS
    assert newer == {"small_lesion_weight", "prior_margin", "early_stopping_start", "flips",
                     "keep_best_after_start", "spatial_share", "intensity_share"}


def test_a_synthetic_copy_stays_in_its_patients_fold():
    from liverseg.train.cascade import fold_of_cases

    ids = np.array(["a", "b", "c", "d", "a~synthetic1", "c~synthetic1", "c~synthetic2"],
                   dtype=object)
    folds = fold_of_cases(ids, 2, seed=0)
    assert folds[4] == folds[0] and folds[5] == folds[6] == folds[2]
    assert sorted(np.bincount(folds[:4])) == [2, 2]  # folds of patients, not of copies


# ---------------------------------------------------------------------------- inference


def test_a_lesion_left_as_a_hole_in_the_liver_is_looked_at(tmp_path):
    from liverseg.inference.volume import Segmenter
    from liverseg.preprocess import preprocess

    from .test_segment import _ct, _settings, _write_model_folder

    settings = _settings().replace(**{"planes": ("axial",), "lesion.image_size": 16})
    segmenter = Segmenter(_write_model_folder(tmp_path, settings), progress=False)
    hu = _ct((14, 32, 24)).astype(np.float32)
    liver = np.zeros(hu.shape, bool)
    liver[3:11, 6:22, 4:20] = True
    hole = np.zeros(hu.shape, bool)
    hole[6:8, 12:16, 10:14] = True  # a lesion the liver networks did not take as liver
    filled_run = segmenter.find_lesions(preprocess(hu), hu, liver & ~hole, keep_probability=True)
    found, probability = filled_run
    threshold = segmenter.settings.inference.threshold
    np.testing.assert_array_equal(found[hole], probability[hole] > threshold)
    assert probability[hole].any()  # the hole is inside the lesion networks' view
    segmenter.settings = segmenter.settings.replace(**{"inference.fill": None})
    found, _ = segmenter.find_lesions(preprocess(hu), hu, liver & ~hole)
    assert not found[hole].any()  # without filling, a hole can never be a lesion
    # the lesion networks took the lesion stage's own input size
    assert segmenter._network("axial", "lesion", "tuner").inputs[0].shape[1:3] == (16, 16)
