"""Pure dependency-contract rules: state order, validation, conflicts, markers, platforms."""

from __future__ import annotations

import pytest

from domain.library.dependency_model import (
    DependencyBinding,
    DependencyProfile,
    InvalidDependencyInput,
    PlatformContext,
    Requirement,
    ValidationState,
    worst,
)
from domain.library.markers import InvalidMarker, evaluate_marker, parse_marker, parse_requirement_spec
from domain.library.dependencies import resolve_requirements, validate_profile

LINUX = PlatformContext.parse("linux-x86_64", "3.11.7")
MAC = PlatformContext.parse("darwin-arm64", "3.12.1")

MLX_LM = DependencyProfile(
    "mlx-lm", 1, "python-venv",
    (
        parse_requirement_spec('mlx==0.32.4; sys_platform == "darwin"'),
        parse_requirement_spec('mlx[cpu]==0.32.4; sys_platform == "linux"'),
        parse_requirement_spec("mlx-lm==0.32.2", ">=3.11"),
    ),
)


def lookup(*profiles):
    table = {(p.profile_id, p.version): p for p in profiles}

    def find(profile_id, version):
        if version is not None:
            return table.get((profile_id, version))
        versions = [p for (pid, _), p in table.items() if pid == profile_id]
        return max(versions, key=lambda p: p.version, default=None)

    return find


def bind(binding_id, profile_id="mlx-lm", **kwargs):
    return DependencyBinding(binding_id=binding_id, model_id="m", profile_id=profile_id, **kwargs)


def test_states_are_ordered_best_to_worst():
    order = [ValidationState.RESOLVED, ValidationState.UNKNOWN_PROFILE, ValidationState.INVALID_PROFILE,
             ValidationState.PROFILE_CONFLICT]
    assert [s.rank for s in order] == [0, 1, 2, 3]
    assert worst([ValidationState.INVALID_PROFILE, ValidationState.RESOLVED]) is ValidationState.INVALID_PROFILE
    assert worst([]) is ValidationState.RESOLVED


def test_no_bindings_resolves_to_an_empty_list():
    result = resolve_requirements("m", [], lookup(MLX_LM), LINUX)
    assert result.groups == () and result.validation_state is ValidationState.RESOLVED
    assert result.contract_version == 1


def test_resolved_binding_evaluates_markers_for_the_platform():
    result = resolve_requirements("m", [bind("b1")], lookup(MLX_LM), LINUX)
    assert result.validation_state is ValidationState.RESOLVED
    applies = {(i.requirement.name, i.requirement.extras): i.applies for i in result.groups[0].requirements}
    assert applies == {("mlx", ()): False, ("mlx", ("cpu",)): True, ("mlx-lm", ()): True}
    on_mac = resolve_requirements("m", [bind("b1")], lookup(MLX_LM), MAC)
    assert {i.requirement.specifier: i.applies for i in on_mac.groups[0].requirements}[
        'mlx==0.32.4; sys_platform == "darwin"'] is True


def test_unknown_platform_leaves_markers_undecided():
    result = resolve_requirements("m", [bind("b1")], lookup(MLX_LM), PlatformContext.parse(None))
    assert [i.applies for i in result.groups[0].requirements] == [None, None, True]


def test_unknown_profile_and_unknown_version():
    result = resolve_requirements("m", [bind("b1", "nope"), bind("b2", profile_version=7)], lookup(MLX_LM), LINUX)
    assert [g.validation_state for g in result.groups] == [ValidationState.UNKNOWN_PROFILE] * 2
    assert {e.code for e in result.validation_errors} == {"unknown_profile"}
    assert result.validation_errors[1].binding_id == "b2" and "v7" in result.validation_errors[1].message


def test_invalid_profile_names_each_broken_field():
    broken = DependencyProfile("broken", 1, "python-venv", (
        Requirement("mlx", ">=0.30"),
        Requirement("bad name!", "==1.0"),
        Requirement("x", "==1.0", markers="sys_platform === "),
        Requirement("y", "==1.0", python_requires="three"),
        Requirement("x", "==2.0", markers="sys_platform === "),
    ))
    result = resolve_requirements("m", [bind("b1", "broken")], lookup(broken), LINUX)
    group = result.groups[0]
    assert group.validation_state is ValidationState.INVALID_PROFILE
    by_field = {(e.code, e.field) for e in group.validation_errors}
    assert ("invalid_pin", "requirements[0].pin") in by_field
    assert ("invalid_name", "requirements[1].name") in by_field
    assert ("invalid_marker", "requirements[2].markers") in by_field
    assert ("invalid_python_requires", "requirements[3].python_requires") in by_field
    assert ("duplicate_requirement", "requirements[4].pin") in by_field
    assert all(e.binding_id == "b1" for e in group.validation_errors)


def test_empty_profile_and_environment_mismatch_are_invalid():
    empty = DependencyProfile("empty", 1, "python-venv", ())
    assert [e.code for e in validate_profile(empty)] == ["empty_profile"]
    conda = DependencyProfile("conda-one", 1, "conda", (Requirement("mlx", "==1.0"),))
    result = resolve_requirements("m", [bind("b1", "conda-one")], lookup(conda), LINUX)
    assert result.validation_state is ValidationState.INVALID_PROFILE
    assert result.validation_errors[0].code == "environment_kind_mismatch"


def test_two_bindings_pinning_one_package_differently_conflict():
    other = DependencyProfile("mlx-lm", 2, "python-venv", (Requirement("mlx-lm", "==0.30.0"),))
    bindings = [bind("b1", profile_version=1), bind("b2", profile_version=2)]
    result = resolve_requirements("m", bindings, lookup(MLX_LM, other), LINUX)
    assert result.validation_state is ValidationState.PROFILE_CONFLICT
    assert [g.validation_state for g in result.groups] == [ValidationState.PROFILE_CONFLICT] * 2
    error = result.groups[0].validation_errors[0]
    assert error.code == "conflicting_pin" and error.scope == "model"
    assert "b1: ==0.32.2" in error.message and "b2: ==0.30.0" in error.message


def test_pins_that_never_apply_together_do_not_conflict():
    darwin_only = DependencyProfile("mac-mlx", 1, "python-venv",
                                    (Requirement("mlx", "==0.20.0", markers='sys_platform == "darwin"'),))
    linux_only = DependencyProfile("linux-mlx", 1, "python-venv",
                                   (Requirement("mlx", "==0.32.4", extras=("cpu",), markers='sys_platform == "linux"'),))
    result = resolve_requirements("m", [bind("a", "mac-mlx"), bind("b", "linux-mlx")], lookup(darwin_only, linux_only),
                                  LINUX)
    assert result.validation_state is ValidationState.RESOLVED


def test_top_level_state_is_the_worst_binding():
    bindings = [bind("ok"), bind("missing", "nope")]
    result = resolve_requirements("m", bindings, lookup(MLX_LM), LINUX)
    assert {g.binding.binding_id: g.validation_state for g in result.groups} == {
        "ok": ValidationState.RESOLVED, "missing": ValidationState.UNKNOWN_PROFILE}
    assert result.validation_state is ValidationState.UNKNOWN_PROFILE


def test_platform_selector_and_backend_key_filter_bindings():
    bindings = [bind("mac", platform_selector="darwin-arm64"), bind("linux", platform_selector="linux-*"),
                bind("audio", backend_key="mlx-audio")]
    on_linux = resolve_requirements("m", bindings, lookup(MLX_LM), LINUX, backend_key="mlx-lm")
    assert [g.binding.binding_id for g in on_linux.groups] == ["linux"]
    everything = resolve_requirements("m", bindings, lookup(MLX_LM), PlatformContext.parse(None))
    assert [g.binding.binding_id for g in everything.groups] == ["audio", "linux", "mac"]


def test_binding_input_is_checked():
    with pytest.raises(InvalidDependencyInput, match="environment_kind"):
        bind("x", environment_kind="docker")
    with pytest.raises(InvalidDependencyInput, match="profile_id"):
        bind("x", profile_id=" ")


@pytest.mark.parametrize(
    ("marker", "env", "expected"),
    [
        ('sys_platform == "linux"', LINUX, True),
        ("sys_platform == 'linux' and platform_machine == 'arm64'", LINUX, False),
        ("sys_platform == 'darwin' or python_version >= '3.11'", LINUX, True),
        ("python_version < '3.10'", LINUX, False),
        ("'linux' in sys_platform", LINUX, True),
        ("(sys_platform == 'darwin') or (sys_platform == 'linux')", MAC, True),
        ("platform_system != 'Windows'", MAC, True),
        ("python_version >= '3.11'", PlatformContext.parse("linux"), None),
    ],
)
def test_markers_evaluate_against_the_platform(marker, env, expected):
    assert evaluate_marker(parse_marker(marker), env.marker_environment()) is expected


@pytest.mark.parametrize("marker", ["", "sys_platform ==", "colour == 'red'", "'a' == 'b'", "(sys_platform == 'x'",
                                    "sys_platform = 'linux'", "sys_platform == 'linux' and"])
def test_bad_markers_are_refused(marker):
    with pytest.raises(InvalidMarker):
        parse_marker(marker)


def test_requirement_specs_parse_round_trip():
    req = parse_requirement_spec('mlx[cpu]==0.32.4; sys_platform == "linux"', ">=3.10")
    assert (req.name, req.extras, req.pin, req.markers, req.python_requires) == (
        "mlx", ("cpu",), "==0.32.4", 'sys_platform == "linux"', ">=3.10")
    assert req.specifier == 'mlx[cpu]==0.32.4; sys_platform == "linux"'


# platform_machine as Python reports it on that system (what requirement markers are written against): arm64 is
# `aarch64` on Linux and `ARM64` on Windows, x86_64 is `AMD64` on Windows; any spelling of the platform names it.
@pytest.mark.parametrize(("platform", "marker"), [
    ("linux-aarch64", 'platform_machine == "aarch64"'), ("linux-arm64", 'platform_machine == "aarch64"'),
    ("darwin-arm64", 'platform_machine == "arm64"'), ("macos-aarch64", 'platform_machine == "arm64"'),
    ("win32-amd64", 'platform_machine == "AMD64"'), ("windows-x86_64", 'platform_machine == "AMD64"'),
    ("win32-arm64", 'platform_machine == "ARM64"'),
    ("linux-amd64", 'platform_machine == "x86_64"'), ("darwin-x86_64", 'platform_machine == "x86_64"'),
])
def test_platform_machine_markers_see_the_name_python_reports_on_that_system(platform, marker):
    environment = PlatformContext.parse(platform).marker_environment()
    assert evaluate_marker(parse_marker(marker), environment) is True, environment["platform_machine"]


def test_this_machine_reports_platform_machine_as_python_does(monkeypatch):
    import platform
    import sys

    from application.library.dependencies import current_platform

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    here = current_platform("3.12.1")
    assert here.marker_environment()["platform_machine"] == "aarch64"  # was `arm64`: aarch64 markers were false
    assert here.label == "linux-arm64" and here.matches("linux-arm64") and here.matches("*-aarch64")
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(platform, "machine", lambda: "AMD64")
    assert evaluate_marker(parse_marker('platform_machine == "AMD64"'), current_platform().marker_environment())


@pytest.mark.parametrize(("platform", "selector"), [
    ("linux-aarch64", "linux-aarch64"), ("linux-aarch64", "linux-arm64"), ("linux-arm64", "*-aarch64"),
    ("linux-aarch64", "LINUX-AARCH64"), ("darwin-arm64", "macos"), ("darwin-arm64", "macos-aarch64"),
    ("darwin-arm64", "osx-*"), ("win32-amd64", "windows-x86_64"), ("win32-x86_64", "win32-amd64"),
    ("win32-x86_64", "win*-AMD64"), ("linux-x86_64", "lin*"), ("darwin-arm64", "darwin-arm*"),
    ("darwin-arm64", "mac*-aarch*"),
])
def test_a_binding_selector_in_any_spelling_matches_its_platform(platform, selector):
    # Stored rows keep what was typed before selectors were normalised (`macos`, `linux-aarch64`).
    assert PlatformContext.parse(platform).matches(selector)


@pytest.mark.parametrize(("platform", "selector"), [
    ("linux-aarch64", "linux-x86_64"), ("linux-aarch64", "darwin-*"), ("darwin-arm64", "windows"),
    ("win32-amd64", "*-arm64"), ("linux-x86_64", "lin*-arm*"), ("darwin-arm64", "linx"),
])
def test_a_binding_selector_for_another_platform_does_not_match(platform, selector):
    assert not PlatformContext.parse(platform).matches(selector)
