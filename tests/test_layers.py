"""The app layers of DESIGN.md hold at every layer of the code: an app imports only the
apps below it (the contract in pyproject.toml, checked by import-linter)."""

from importlinter.cli import lint_imports

from config.settings import BASE_DIR


def test_apps_import_only_downwards(capsys):
    broken = lint_imports(config_filename=str(BASE_DIR / "pyproject.toml"), no_cache=True)
    assert broken == 0, capsys.readouterr().out
