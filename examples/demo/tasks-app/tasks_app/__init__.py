"""tasks-app: a tiny to-do list library and command line tool."""

from tasks_app.store import add, done, list_tasks, load, new_store, save

__all__ = ["add", "done", "list_tasks", "load", "new_store", "save"]
__version__ = "0.1.0"
