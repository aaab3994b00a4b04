"""One conformance suite every key service passes (issue #16 item 4).

Each backend (``backends.py``) says how to make a key-encryption key on its real or fake server,
and, where the service has such states, how an administrator disables it or schedules its
deletion behind Sundown's back while the server would still answer. ``test_key_services.py``
runs the same tests on every backend: a wrap/unwrap round trip; a wrong binding refused; a
destroyed key refused with a clear error; a disabled or pending key refused by Sundown's own
check; malformed URIs refused naming the problem; no key material or token in errors or logs.
"""
