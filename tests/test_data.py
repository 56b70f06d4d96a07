"""The digits split by class and the P x K batch sampler: shapes, coverage, seeds, errors."""

import numpy as np
import pytest
from backends import SKIPPED

from tripletlab.data import TEST_CLASSES, TRAIN_CLASSES, PKSampler, load_digits


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_split_is_by_class(digits):
    assert set(digits.y_train.tolist()) == set(TRAIN_CLASSES) == set(range(7))
    assert set(digits.y_test.tolist()) == set(TEST_CLASSES) == {7, 8, 9}
    assert len(digits.x_train) + len(digits.x_test) == 1797
    for x, y in ((digits.x_train, digits.y_train), (digits.x_test, digits.y_test)):
        assert x.dtype == np.float32 and x.shape == (len(y), 64) and y.dtype == np.int64
        assert x.min() == 0.0 and x.max() == 1.0


def check_batches(batches, labels, p, k):
    for batch in batches:
        assert all(type(i) is int for i in batch)
        classes, counts = np.unique(labels[batch], return_counts=True)
        assert len(classes) == p and (counts == k).all()
        # grouped by class, k consecutive indices each
        assert (labels[batch].reshape(p, k) == labels[batch][::k, None]).all()


@pytest.mark.parametrize(("p", "k"), [(7, 8), (3, 4), (2, 2), (7, 1), (1, 5)])
def test_every_batch_has_p_classes_of_k_and_an_epoch_covers_every_class(digits, p, k):
    labels = digits.y_train
    sampler = PKSampler(labels, p, k, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == len(labels) // (p * k)
    check_batches(batches, labels, p, k)
    for batch in batches:  # no duplicate: every class has at least k samples
        assert len(set(batch)) == p * k
    seen = np.unique(labels[np.concatenate(batches)])
    assert set(seen.tolist()) == set(TRAIN_CLASSES)


def test_classes_are_cycled_and_samples_are_used_before_reuse():
    labels = np.repeat(np.arange(5), 6)  # 5 classes of 6: 30 samples
    sampler = PKSampler(labels, 2, 3, seed=0)  # 5 batches, 10 class slots: each class twice
    batches = sampler.batches(0)
    classes = [int(labels[batch[j * 3]]) for batch in batches for j in range(2)]
    assert sorted(classes[:5]) == list(range(5)) and sorted(classes[5:]) == list(range(5))
    assert sorted(np.concatenate(batches).tolist()) == list(range(30))  # each sample once


def test_small_class_is_sampled_with_replacement_only_when_needed():
    labels = np.array([0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2])
    sampler = PKSampler(labels, 3, 3, seed=1)
    (batch,) = sampler.batches(0)
    check_batches([batch], labels, 3, 3)
    small = [i for i in batch if labels[i] == 0]
    assert set(small) == {0, 1}  # both samples, one of them twice
    assert len(set(i for i in batch if labels[i] != 0)) == 6  # the others without duplicates


def test_deterministic_given_seed_and_epochs_differ(digits):
    labels = digits.y_train
    a, b = PKSampler(labels, 4, 4, seed=7), PKSampler(labels, 4, 4, seed=7)
    assert list(a) == list(b)  # epoch 0
    assert list(a) == list(b)  # epoch 1
    assert a.batches(0) != a.batches(1)
    assert PKSampler(labels, 4, 4, seed=8).batches(0) != b.batches(0)
    a.set_epoch(0)
    assert list(a) == b.batches(0)


def test_usable_as_a_torch_batch_sampler(digits):
    if "torch" in SKIPPED:
        pytest.skip("torch skipped")
    import torch

    x, y = torch.as_tensor(digits.x_train), torch.as_tensor(digits.y_train)
    sampler = PKSampler(digits.y_train, 3, 4, seed=0)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_sampler=sampler
    )
    batches = list(loader)
    assert len(batches) == len(loader) == len(sampler)
    expected = PKSampler(digits.y_train, 3, 4, seed=0).batches(0)
    for (xb, yb), batch in zip(batches, expected, strict=True):
        assert xb.shape == (12, 64) and torch.equal(yb, y[batch])


def test_tf_dataset_gives_the_batches_and_a_new_epoch_per_pass(digits):
    if "tensorflow" in SKIPPED:
        pytest.skip("tensorflow skipped")
    sampler = PKSampler(digits.y_train, 3, 4, seed=0)
    dataset = sampler.tf_dataset(digits.x_train, digits.y_train)
    reference = PKSampler(digits.y_train, 3, 4, seed=0)
    for epoch in range(2):
        got = [(xb.numpy(), yb.numpy()) for xb, yb in dataset]
        expected = reference.batches(epoch)
        assert len(got) == len(expected)
        for (xb, yb), batch in zip(got, expected, strict=True):
            np.testing.assert_array_equal(xb, digits.x_train[batch])
            np.testing.assert_array_equal(yb, digits.y_train[batch])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"p": 8, "k": 2}, "p"),
        ({"p": 0, "k": 2}, "p"),
        ({"p": 2, "k": 0}, "k"),
        ({"p": 2.0, "k": 2}, "p"),
        ({"p": 2, "k": True}, "k"),
        ({"p": 2, "k": 2, "seed": -1}, "seed"),
        ({"p": 7, "k": 200}, "p \\* k"),
    ],
)
def test_bad_arguments_raise_naming_them(digits, kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        PKSampler(digits.y_train, **kwargs)


@pytest.mark.parametrize(
    "labels", [np.zeros((3, 2), int), np.array([0.0, 1.0]), np.array([], int)]
)
def test_bad_labels_raise(labels):
    with pytest.raises(ValueError, match="^labels"):
        PKSampler(labels, 1, 1)
