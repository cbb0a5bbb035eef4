"""The plain path of `EnvSettings` (no pydantic) gives exactly what pydantic gives, field by field, or leaves
the value to pydantic; and the usual environment is read without importing pydantic (issue 19)."""

import enum
import json
import os
import typing
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from entrypoints.composition.env_settings import _Decline, _decode
from entrypoints.composition.settings import (
    DistributionSettings,
    ManagerSettings,
    ServerSettings,
    Settings,
    describe_settings_error,
)

from entrypoints.composition import settings as settings_module  # noqa: E402
from entrypoints.composition.env_settings import EnvSettings  # noqa: E402

# Every settings group the module declares (a group added later is checked too).
GROUPS = tuple(value for value in vars(settings_module).values()
               if isinstance(value, type) and issubclass(value, EnvSettings) and value is not EnvSettings)
assert {ManagerSettings, ServerSettings, DistributionSettings} <= set(GROUPS)
TEXT_SAMPLES = (
    "", " ", "x", " spaced ", "é", "a" * 300, "0", "1", "-1", "007", "+5", " 5", "1_000", "5.0", "abc",
    "99999999999999999999", "65535", "65536", "32", "33", "1.5", "-0.5", "1e3", ".5", "5.", "nan", "inf",
    "true", "True", "TRUE", "t", "y", "Y", "f", "F", "n", "FALSE", "off", "On", " yes", "2", "no", "N", "~/x", "/tmp/a", "a//b",
    "on", "auto", "ON", "enabled", "lru", "LRU", "lfu", "fifo", "bogus", '["a","b"]', "[]", "a:b", "[1]",
    '{"a": 1}', "http://h:1", "http://a, https://b:2", "*", "h", "mlx-community",
)
PYTHON_SAMPLES = (None, 0, 5, -3, 5.0, 2.5, True, False, Path("/x"), [Path("a")], ["a", "b"], [], "x")


def _own_words(annotation) -> tuple[str, ...]:
    """A Literal's words and an enum's values, in any Optional/Union: the values a field is made for."""
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(w for w in typing.get_args(annotation) if isinstance(w, str))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return tuple(str(member.value) for member in annotation)
    return tuple(word for arg in typing.get_args(annotation) for word in _own_words(arg))


def _field_cases():
    for group in GROUPS:
        for name in group._fields:
            yield group, name


def _pydantic(group, name, value):
    try:
        return ("ok", getattr(group.pydantic_model()(**{name: value}), name))
    except ValidationError:
        return ("error", None)


def _plain(group, name, value):
    try:
        return ("ok", group._plain_values({name: value})[name])
    except _Decline:
        return ("declined", None)


@pytest.mark.parametrize(("group", "name"), list(_field_cases()), ids=lambda v: getattr(v, "__name__", v))
def test_the_plain_path_agrees_with_pydantic_or_leaves_the_value_to_it(group, name):
    annotation = group._field_types()[name]
    values = [_decode(text, annotation) for text in TEXT_SAMPLES + _own_words(annotation)] + list(PYTHON_SAMPLES)
    taken = 0
    for value in values:
        plain = _plain(group, name, value)
        if plain[0] == "declined":
            continue
        taken += 1
        expected = _pydantic(group, name, value)
        assert expected[0] == "ok", f"{group.__name__}.{name}={value!r}: plain path accepted what pydantic refuses"
        assert plain[1] == expected[1] and type(plain[1]) is type(expected[1]), (
            f"{group.__name__}.{name}={value!r}: plain {plain[1]!r}, pydantic {expected[1]!r}")
    secret = "SecretStr" in str(group.__annotations__[name])
    assert taken or secret, f"{group.__name__}.{name}: the plain path never decides a value"


def test_defaults_are_pydantics_defaults(monkeypatch):
    for key in list(os.environ):
        if key.upper().startswith("MLX_"):
            monkeypatch.delenv(key)
    for group in GROUPS:
        ours, theirs = group(), group.pydantic_model()()
        assert {n: getattr(ours, n) for n in group._fields} == {n: getattr(theirs, n) for n in group._fields}


def test_a_value_only_pydantic_accepts_is_converted_by_pydantic(monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_PORT", " 8080")  # pydantic strips the blank; the plain path declines
    monkeypatch.setenv("MLX_MANAGER_SECRET_KEY", "s3cret")
    monkeypatch.setenv("MLX_SERVER_MAX_MODELS", "1_0")
    settings = Settings()
    assert settings.manager.port == 8080 and settings.server.max_models == 10
    assert settings.manager.secret_key.get_secret_value() == "s3cret" and "s3cret" not in repr(settings.manager)


def test_a_bad_value_is_pydantics_validation_error_named_by_its_variable(monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_PORT", "70000")
    with pytest.raises(ValidationError) as caught:
        ManagerSettings()
    assert describe_settings_error(caught.value) == (
        "invalid setting MLX_MANAGER_PORT='70000': Input should be less than or equal to 65535")


def test_explicit_arguments_win_over_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MLX_MANAGER_HOME", "/elsewhere")
    monkeypatch.setenv("MLX_MANAGER_PORT", "1234")
    settings = ManagerSettings(home=tmp_path, unknown_argument=1)
    assert settings.home == tmp_path and settings.port == 1234


_NO_PYDANTIC = """
import json, sys
from entrypoints.composition.settings import Settings
s = Settings()
print(json.dumps({"pydantic": "pydantic" in sys.modules, "home": str(s.manager.home),
                  "offline": s.manager.offline, "port": s.manager.port, "db": s.manager.resolved_database_url,
                  "auth": s.manager.auth, "dirs": [str(p) for p in s.manager.allowed_model_dirs],
                  "max_models": s.server.max_models, "mirror": s.distribution.mirror_base_url}))
"""


def test_the_usual_environment_is_read_without_pydantic(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith("MLX_")}
    env.update({"MLX_MANAGER_HOME": str(tmp_path), "MLX_MANAGER_OFFLINE": "true", "MLX_MANAGER_PORT": "8080",
                "MLX_MANAGER_AUTH": "yes", "MLX_MANAGER_ALLOWED_MODEL_DIRS": json.dumps([str(tmp_path / "a")]),
                "MLX_SERVER_MAX_MODELS": "2", "MLX_MIRROR_BASE_URL": "http://127.0.0.1:9"})
    out = subprocess.run([sys.executable, "-c", _NO_PYDANTIC], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "pydantic": False, "home": str(tmp_path), "offline": True, "port": 8080,
        "db": f"sqlite:///{tmp_path / 'mlxm.db'}", "auth": "on", "dirs": [str(tmp_path / "a")], "max_models": 2,
        "mirror": "http://127.0.0.1:9",
    }


def test_a_constraint_only_pydantic_knows_sends_the_fields_values_to_pydantic(monkeypatch):
    from entrypoints.composition.env_settings import EnvSettings, Field

    class Example(EnvSettings):
        env_prefix = "MLX_EXAMPLE_"
        code: str = Field(default="ab", pattern=r"^[a-z]+$", description="letters")
        count: int = Field(default=1, ge=0, description="documented only: still the plain path")

    assert Example._plain_values({"count": "3"}) == {"count": 3}
    with pytest.raises(_Decline):
        Example._plain_values({"code": "xyz"})
    monkeypatch.setenv("MLX_EXAMPLE_CODE", "xyz")
    assert Example().code == "xyz"
    monkeypatch.setenv("MLX_EXAMPLE_CODE", "XYZ")
    with pytest.raises(ValidationError):
        Example()


def test_model_copy_applies_updates_to_a_copy_as_pydantic_does(monkeypatch, tmp_path):
    monkeypatch.setenv("MLX_MANAGER_PORT", "1234")
    original = ManagerSettings(home=tmp_path)
    ours = original.model_copy(update={"port": 4321, "host": "0.0.0.0"})
    theirs = ManagerSettings.pydantic_model()(home=tmp_path, port=1234).model_copy(update={"port": 4321, "host": "0.0.0.0"})
    assert type(ours) is ManagerSettings and (ours.port, ours.host, ours.home) == (theirs.port, theirs.host, theirs.home)
    assert (original.port, original.host) == (1234, "127.0.0.1")
