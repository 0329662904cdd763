"""`python -m {{ cookiecutter.package_name }}` is the same as the `{{ cookiecutter.project_slug }}` command."""

import sys

from .cli import main

sys.exit(main())
