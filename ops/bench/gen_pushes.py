#!/usr/bin/env python3
"""Signed GitHub push deliveries for ops/bench/webhooks.sh.

Writes PREFIX.1 .. PREFIX.T, one delivery per line: `<X-GitHub-Delivery>\t<X-Hub-Signature-256>\t<body>`.
Every body is GitHub's published push example (tests/fixtures/webhooks/push/05-branch-created.json)
pointed at an installation and a push to its repository's default branch, with its own head SHA,
spread over REPOS repositories (0, the default: one repository per delivery), so each delivery
is new work for the API (no dedup; with REPOS = 0 no push supersedes another either).

usage: gen_pushes.py FIXTURE SECRET PREFIX THREADS PER_THREAD [REPOS]
"""
import hashlib
import hmac
import json
import os
import sys
import uuid


def main() -> None:
    fixture, secret, prefix, threads, per_thread = sys.argv[1:6]
    repos = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    base = json.load(open(fixture))
    base["ref"] = "refs/heads/main"
    base["created"] = False
    base["deleted"] = False
    base["before"] = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    base["installation"] = {"id": 4242, "node_id": "MDIzOkludGVncmF0aW9uNDI0Mg=="}
    base["repository"]["default_branch"] = "main"
    base["repository"]["owner"]["login"] = "acme"
    base["sender"]["type"] = "User"
    key = secret.encode()
    n = 0
    for t in range(1, int(threads) + 1):
        with open(f"{prefix}.{t}", "w") as out:
            for _ in range(int(per_thread)):
                n += 1
                name = f"repo-{n % repos if repos else n}"
                base["repository"]["name"] = name
                base["repository"]["full_name"] = f"acme/{name}"
                base["after"] = os.urandom(20).hex()
                body = json.dumps(base, separators=(",", ":")).encode()
                sig = hmac.new(key, body, hashlib.sha256).hexdigest()
                out.write(f"{uuid.uuid4()}\tsha256={sig}\t{body.decode()}\n")


if __name__ == "__main__":
    main()
