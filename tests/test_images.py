"""Image tags, caching and the base image error, against the real Docker daemon."""

import pytest

from pytest_nni_docker.engine import Engine
from pytest_nni_docker.errors import ConfigError, ImageError
from pytest_nni_docker.images import ImageBuilder, ImageSpec

BASE = "pytest-nni-docker/debian:bookworm"


@pytest.fixture(scope="module")
def builder():
    return ImageBuilder(Engine())


def test_tag_is_stable_for_same_inputs(builder):
    spec = ImageSpec("3.0", BASE)

    assert builder.tag_for(spec, "sha256:aaa") == builder.tag_for(ImageSpec("3.0", BASE), "sha256:aaa")


@pytest.mark.parametrize(
    ("changed", "base_id"),
    [
        (ImageSpec("2.10.1", BASE), "sha256:aaa"),
        (ImageSpec("3.0", BASE, pip_packages=("torch==2.13.0",)), "sha256:aaa"),
        (ImageSpec("3.0", BASE), "sha256:bbb"),
        (ImageSpec("3.0", "pytest-nni-docker/debian:bullseye"), "sha256:aaa"),
    ],
    ids=["nni-version", "pip-packages", "base-image-id", "base-image-name"],
)
def test_tag_changes_with_any_input(builder, changed, base_id):
    assert builder.tag_for(changed, base_id) != builder.tag_for(ImageSpec("3.0", BASE), "sha256:aaa")


def test_cached_image_is_reused_without_build(builder):
    first = builder.ensure_nni_image(ImageSpec("3.0", BASE))
    messages = []
    cached = ImageBuilder(builder.engine, progress=messages.append)

    second = cached.ensure_nni_image(ImageSpec("3.0", BASE))

    assert second == first
    assert messages == []


def test_missing_base_image_names_bootstrap_command(builder):
    with pytest.raises(ImageError) as caught:
        builder.ensure_nni_image(ImageSpec("3.0", "pytest-nni-docker/debian:nosuchsuite"))

    message = str(caught.value)
    assert "Base image pytest-nni-docker/debian:nosuchsuite is not present" in message
    assert "python -m pytest_nni_docker bootstrap-base nosuchsuite" in message


def test_missing_base_image_without_pull(builder):
    with pytest.raises(ImageError, match="is not present"):
        builder.ensure_base("example.invalid/no-such-image:1", allow_pull=False)


def test_unsupported_cell_rejected_before_build(builder):
    with pytest.raises(ConfigError, match=r"NNI 3.0 on Python 3.13 .* is not supported"):
        builder.ensure_nni_image(ImageSpec("3.0", "pytest-nni-docker/debian:trixie"))


def test_build_failure_shows_build_output(builder):
    """A pip requirement that cannot exist fails the build with pip's own message."""
    spec = ImageSpec("3.0", BASE, pip_packages=("pytest-nni-docker-no-such-package==0.0.0",))

    with pytest.raises(ImageError) as caught:
        builder.ensure_nni_image(spec)

    message = str(caught.value)
    assert "Building image pytest-nni-docker/nni:3.0-" in message
    assert "pytest-nni-docker-no-such-package" in message
