"""Out-of-fold priors: each training slice's prior comes from a localizer that never saw its
patient (the guard against prior leakage; ``smoke`` uses one fold, so only this test runs it)."""

from types import SimpleNamespace

import numpy as np
import pytest

from liverseg.config import profile
from liverseg.lesion_synthesis import COPY_MARK
from liverseg.train import cascade
from liverseg.train.slices import SliceSet

PATIENTS = [f"p{i}" for i in range(7)]


def _slices():
    """Three slices per patient and one synthetic copy of p0 and p3; every pixel of a slice
    holds its patient's number, so a localizer's training images say whom it saw."""
    ids = [p for p in PATIENTS for _ in range(3)] + [f"p0{COPY_MARK}1", f"p3{COPY_MARK}1"]
    number = np.array([PATIENTS.index(c.split(COPY_MARK)[0]) for c in ids], np.float32)
    images = np.broadcast_to(number[:, None, None], (len(ids), 4, 4)).copy()
    return SliceSet(images, images.copy(), np.ones(images.shape, np.uint8),
                    np.array(ids, dtype=object))


@pytest.mark.parametrize("folds", [2, 3])
def test_each_folds_priors_come_from_a_localizer_that_never_saw_that_fold(tmp_path, monkeypatch,
                                                                          folds):
    settings = profile("smoke").replace(**{"train.prior_folds": folds})
    chosen = _slices()
    trained = []  # per fold localizer: the patients (numbers) of its training images

    def fit_localizer(settings, structure, train, val, workdir, progress, desc, epochs=None,
                      case_ids=None):
        assert val is None and epochs == 7  # no validation of its own; the main one's epochs
        assert len(case_ids) == len(train[0])  # its own slices' patients, for the sampler
        trained.append(set(np.unique(train[0]).astype(int).tolist()))
        return SimpleNamespace(model=len(trained) - 1)  # the model: its fold localizer's index

    def predict_priors(model, images, hu, prior, batch):
        return np.full(images.shape, model, np.float32)  # a prior that names its localizer

    monkeypatch.setattr(cascade, "_fit_localizer", fit_localizer)
    monkeypatch.setattr(cascade, "predict_priors", predict_priors)
    main = SimpleNamespace(model="main", best_epoch=7)
    priors = cascade.out_of_fold_priors(chosen, "liver", settings, tmp_path, main, progress=False)

    assert len(trained) == folds
    fold = cascade.fold_of_cases(chosen.case_ids, folds, settings.train.seed)
    patient = chosen.images[:, 0, 0].astype(int)
    for k in range(folds):
        in_fold = set(patient[fold == k].tolist())
        assert in_fold, f"fold {k} is empty"
        assert not trained[k] & in_fold  # never saw fold k…
        assert trained[k] | in_fold == set(range(len(PATIENTS)))  # …and saw all the others
        assert (priors[fold == k] == k).all()  # fold k's priors are its localizer's
    # folds are made of whole patients, a synthetic copy in its patient's fold
    for number in range(len(PATIENTS)):
        assert len(set(fold[patient == number].tolist())) == 1


def test_one_fold_or_too_few_patients_give_the_main_localizers_in_sample_priors(tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setattr(cascade, "_fit_localizer", lambda *a, **k: pytest.fail("trained a fold"))
    monkeypatch.setattr(cascade, "predict_priors",
                        lambda model, images, *a: np.full(images.shape, 5.0, np.float32))
    main = SimpleNamespace(model="main", best_epoch=7)
    chosen = _slices()
    for folds, case_ids in ((1, chosen.case_ids), (8, chosen.case_ids)):  # 7 patients < 8 folds
        settings = profile("smoke").replace(**{"train.prior_folds": folds})
        assert cascade.fold_of_cases(case_ids, folds, 0) is None
        priors = cascade.out_of_fold_priors(chosen, "liver", settings, tmp_path, main,
                                            progress=False)
        assert (priors == 5.0).all()
