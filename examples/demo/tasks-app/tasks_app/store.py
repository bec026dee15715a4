"""A tiny to-do store.

A store is a plain dict, ``{"next_id": 1, "tasks": [...]}``, where each task is
``{"id": int, "title": str, "done": bool}``. It lives in memory and can be saved
to, and loaded from, a JSON file.
"""

import json
import os


def new_store():
    """Return an empty store."""
    return {"next_id": 1, "tasks": []}


def load(path):
    """Load a store from the JSON file at ``path``; a missing file is an empty store."""
    if not os.path.exists(path):
        return new_store()
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save(store, path):
    """Write ``store`` to ``path`` as JSON (temp file, then rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(store, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def _find(store, task_id):
    for task in store["tasks"]:
        if task["id"] == task_id:
            return task
    raise KeyError(task_id)


def add(store, title):
    """Add a task titled ``title``; return its id."""
    title = title.strip()
    if not title:
        raise ValueError("a task needs a title")
    task_id = store["next_id"]
    store["next_id"] = task_id + 1
    store["tasks"].append({"id": task_id, "title": title, "done": False})
    return task_id


def list_tasks(store, include_done=True):
    """Return the tasks, oldest first; without done ones if ``include_done`` is false."""
    return [t for t in store["tasks"] if include_done or not t["done"]]


def done(store, task_id):
    """Mark the task ``task_id`` as done. Raises KeyError for an unknown id."""
    _find(store, task_id)["done"] = True


# `list` is the name the CLI and the README use; `list_tasks` avoids shadowing the builtin
# inside this module.
list = list_tasks  # noqa: A001
