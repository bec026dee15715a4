# Empty on purpose: its presence makes pytest put the project root on sys.path,
# so `import tasks_app` works from tests/ without installing anything.
