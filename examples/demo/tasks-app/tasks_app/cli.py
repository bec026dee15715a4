"""Command line interface: python3 -m tasks_app [--file FILE] COMMAND ..."""

import argparse
import os
import sys

from tasks_app import store as st


def build_parser():
    p = argparse.ArgumentParser(prog="tasks", description="A tiny to-do list.")
    p.add_argument("--file", default=os.environ.get("TASKS_FILE", "tasks.json"),
                   help="JSON file holding the tasks (default: tasks.json)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("add", help="add a task").add_argument("title")
    sub.add_parser("list", help="list tasks").add_argument("--pending", action="store_true")
    sub.add_parser("done", help="mark a task done").add_argument("id", type=int)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    store = st.load(args.file)
    try:
        if args.command == "add":
            print(st.add(store, args.title))
        elif args.command == "list":
            for t in st.list_tasks(store, include_done=not args.pending):
                print("%3d [%s] %s" % (t["id"], "x" if t["done"] else " ", t["title"]))
            return 0
        elif args.command == "done":
            st.done(store, args.id)
    except KeyError as e:
        print("tasks: no task with id %s" % e, file=sys.stderr)
        return 1
    st.save(store, args.file)
    return 0
