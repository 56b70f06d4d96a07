"""The package as a whole: lazy imports, one API in three backends, pins, device, seeds."""

import inspect
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import yaml
from backends import ALL, FRAMEWORKS, SKIPPED, load
from packaging.requirements import Requirement

import tripletlab
from tripletlab import data, device

ROOT = Path(__file__).resolve().parent.parent


def test_import_tripletlab_loads_no_framework():
    code = (
        "import sys, tripletlab, tripletlab.numpy, tripletlab.device, tripletlab.data, "
        "tripletlab.metrics, tripletlab.training, tripletlab.exercises, "
        "tripletlab.distributed_demo;"
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras', 'sklearn') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_backend_loads_only_its_own_framework():
    code = (
        "import sys, tripletlab.torch;print('torch' in sys.modules, 'tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True False"


@pytest.mark.parametrize("name", ALL)
def test_every_backend_exposes_the_same_names_and_signatures(name):
    reference = load("numpy")
    module = load(name)
    extra = () if name == "numpy" else tripletlab.FRAMEWORK_NAMES
    assert tuple(module.__all__) == tripletlab.PUBLIC_NAMES + extra
    defined = {
        key
        for key, value in vars(module).items()
        if not key.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module.__name__
    }
    assert defined == set(module.__all__), "a public name that is not in every backend"
    for public in tripletlab.PUBLIC_NAMES:
        assert inspect.signature(getattr(module, public)) == inspect.signature(
            getattr(reference, public)
        ), public
        assert getattr(module, public).__doc__, f"{name}.{public} has no docstring"


def _init_parameters(cls) -> list[str]:
    """The constructor's parameter names, without ``self`` and a Keras layer's ``**kwargs``."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in parameters if p.name != "self" and p.kind != p.VAR_KEYWORD]


def test_the_framework_models_take_the_same_arguments():
    torch_module, tf_module = load("torch"), load("tensorflow")
    for model in tripletlab.FRAMEWORK_NAMES:
        torch_class, tf_class = getattr(torch_module, model), getattr(tf_module, model)
        assert _init_parameters(torch_class) == _init_parameters(tf_class), model
        assert torch_class.__doc__ and tf_class.__doc__, model


# ----------------------------------------------------------------- pins


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.strip()
        if line and not line.startswith(("#", "-")):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[req.name.lower().replace("_", "-")] = spec.version
    return pins


def test_constraints_and_environment_yml_pin_the_same_versions():
    constraints = _pins((ROOT / "constraints.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    (pip_section,) = [d for d in env["dependencies"] if isinstance(d, dict)]
    assert "-e .[all]" in pip_section["pip"] and "-c constraints.txt" in pip_section["pip"]
    env_pins = _pins(pip_section["pip"])
    assert env_pins, "environment.yml pins nothing"
    for name, version in env_pins.items():
        assert constraints.get(name) == version, f"{name}: {version} vs {constraints.get(name)}"
    assert constraints["torch"] == "2.13.0" and constraints["tensorflow-cpu"] == "2.21.0"


def test_every_dependency_is_pinned_within_its_pyproject_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert set(extras) == {"torch", "tensorflow", "course", "docs", "dev", "all"}
    constraints = _pins((ROOT / "constraints.txt").read_text().splitlines())
    env_pins = _pins(
        yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"][2]["pip"]
    )
    requirements = project["dependencies"] + [r for v in extras.values() for r in v]
    for line in requirements:
        req = Requirement(line)
        name = req.name.lower()
        if name == project["name"]:  # an extra that includes others
            continue
        assert name in constraints, f"{name} is not pinned in constraints.txt"
        assert name in env_pins, f"{name} is not pinned in environment.yml"
        assert req.specifier.contains(constraints[name]), f"{name} pin outside {req.specifier}"


# ----------------------------------------------------------------- device and seeds


def test_torch_device_is_the_gpu_when_there_is_one():
    torch = load("torch").torch
    dev = device.try_gpu()
    assert dev.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert device.try_gpu(10_000).type == "cpu"
    assert re.search(r"device: torch (cpu|cuda:\d \(.+\))( \||$)", device.describe())


def test_tensorflow_device_is_the_gpu_when_there_is_one():
    tf = load("tensorflow").tf
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    assert device.tf_device() == ("/GPU:0" if has_gpu else "/CPU:0")
    assert re.search(r"tensorflow /(CPU|GPU):0$", device.describe())


def test_full_float32_turns_tf32_off_in_the_imported_frameworks_only():
    code = (
        "import torch; torch.backends.cudnn.allow_tf32 = True\n"
        "from tripletlab import device; device.full_float32()\n"
        "import sys; assert 'tensorflow' not in sys.modules\n"
        "print(torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)"
    )
    if "torch" not in SKIPPED:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.stdout.strip() == "False False", out.stderr[-2000:]
    if "tensorflow" not in SKIPPED:
        tf = load("tensorflow").tf
        tf.config.experimental.enable_tensor_float_32_execution(True)
        device.full_float32()
        assert not tf.config.experimental.tensor_float_32_execution_enabled()


def test_describe_names_only_imported_frameworks():
    code = "from tripletlab import device; print(device.describe())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "device: numpy cpu"


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_seed_everything_makes_every_generator_repeat(name):
    import random

    load(name)

    def draw():
        rng = data.seed_everything(123)
        if name == "torch":
            import torch

            framework = torch.rand(3).tolist()
        else:
            import tensorflow as tf

            framework = tf.random.uniform((3,)).numpy().tolist()
        return [random.random(), np.random.rand(), rng.random(), *framework]  # noqa: NPY002

    first = draw()
    assert draw() == first
    data.seed_everything(124)
    assert random.random() != first[0]


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_seed_must_be_a_non_negative_int(seed):
    with pytest.raises(ValueError, match="seed must be"):
        data.seed_everything(seed)


def test_best_time_is_the_minimum_of_the_timed_calls():
    from tripletlab.timing import best_time

    calls = []
    seconds = best_time(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6 and 0.0 <= seconds < 1.0
    with pytest.raises(ValueError, match="repeats must be"):
        best_time(lambda: None, repeats=0)


def test_environment_yml_picks_tensorflow_by_the_same_markers_as_pyproject():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = extras["optional-dependencies"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    (pip_section,) = [d for d in env["dependencies"] if isinstance(d, dict)]
    env_markers = {
        Requirement(line).name: Requirement(line).marker
        for line in pip_section["pip"]
        if not line.startswith("-")
    }
    marked = [Requirement(line) for lines in extras.values() for line in lines]
    marked = [req for req in marked if req.marker is not None]
    assert {req.name for req in marked} >= {"tensorflow", "tensorflow-cpu"}
    for req in marked:
        assert str(env_markers[req.name]) == str(req.marker), req.name
