"""Numbers users type at the frontends: huge ones are usage errors, never an OverflowError from SQLite (issue 6)."""

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from entrypoints.cli.main import cli
from entrypoints.composition.container import Container
from entrypoints.http.app import create_app

HUGE = "99999999999999999999999"
MAX_SQL_INT = str(2**63 - 1)


@pytest.fixture
def container(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))  # the real SQLite database under tmp_path
    container = Container()
    container.database_upgrade()()
    return container


def _one_line_usage_error(result):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: "), result.output


def test_huge_offsets_and_ids_are_422_or_404_over_http(container):
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        for path in ("/api/models", "/api/audit"):
            bad = client.get(path, params={"offset": HUGE})
            assert bad.status_code == 422, bad.text
            assert bad.json()["error"]["param"] == "offset"
            # The largest SQLite integer is still a valid (empty) page.
            edge = client.get(path, params={"offset": MAX_SQL_INT})
            assert edge.status_code == 200, edge.text
        assert client.get(f"/api/mappings/{HUGE}").status_code == 404


@pytest.mark.parametrize("args", [
    ("search", "x", "--offset", HUGE),
    ("audit", "--offset", HUGE),
    ("routes", "rm", HUGE),
])
def test_huge_offsets_and_ids_are_usage_errors_in_the_cli(container, args):
    _one_line_usage_error(CliRunner().invoke(cli, list(args), obj=container))


def test_the_largest_sql_integer_offset_is_an_empty_page_in_the_cli(container):
    result = CliRunner().invoke(cli, ["search", "x", "--offset", MAX_SQL_INT, "--json"], obj=container)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("port", ["99999", "65536", "-1"])
def test_serve_with_an_impossible_port_is_a_usage_error_before_binding(container, port):
    _one_line_usage_error(CliRunner().invoke(cli, ["serve", "--port", port], obj=container))
