"""{{ cookiecutter.project_name }}.

{{ cookiecutter.description | wrap_columns(79) }}
"""
