"""Load-test harness for authgate (issue #5): ``python -m bench`` or ``make bench``.

Starts the real ``authgate serve`` on SQLite and MariaDB, drives it with wrk over
loopback and compares each scenario with a baseline measured in the same run.
"""
