"""The ``ebid`` command line: ``ebid db upgrade``, ``ebid ca init``, ``ebid audit verify``, ``ebid demo``..."""

from __future__ import annotations

from flask.cli import FlaskGroup

from ebid.app import create_app


def _app_factory():
    return create_app()


cli = FlaskGroup(create_app=_app_factory, add_default_commands=True, load_dotenv=False,
                 help="ebid: e-bidding and electronic bid evaluation platform.")


def main() -> None:
    cli(prog_name="ebid")


if __name__ == "__main__":
    main()
