"""``python -m reelsearch.keytool``: make an API key, or a scoped search token from one.

python -m reelsearch.keytool new web --actions search
python -m reelsearch.keytool scoped rsk_... --key-id web --filter genres=Drama --cap 50
"""

from __future__ import annotations

import argparse

from reelsearch.http.apikeys import hash_key, new_key, sign_scoped_token


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m reelsearch.keytool")
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="a new key and its REELSEARCH_API_KEYS entry")
    new.add_argument("id")
    new.add_argument("--actions", default="search", help="search, admin or search+admin")
    scoped = commands.add_parser("scoped", help="a scoped search token signed with a key")
    scoped.add_argument("key")
    scoped.add_argument("--key-id", required=True)
    scoped.add_argument("--filter", action="append", default=[], help="name=value (repeat)")
    scoped.add_argument("--cap", type=int, default=100, help="deepest hit it may see")
    scoped.add_argument("--ttl", type=int, default=3600, help="seconds it is valid")
    args = parser.parse_args()
    if args.command == "new":
        key = new_key()
        print(f"key (give it to the client, it is not stored): {key}")
        print(f"REELSEARCH_API_KEYS entry: {args.id}:{hash_key(key).hex()}:{args.actions}")
    else:
        filters = dict(item.split("=", 1) for item in args.filter)
        print(sign_scoped_token(args.key, args.key_id, filters, args.cap, args.ttl))


if __name__ == "__main__":
    main()
