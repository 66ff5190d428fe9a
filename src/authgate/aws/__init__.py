"""authgate on AWS Lambda: the entry points API Gateway and EventBridge invoke.

* :mod:`authgate.aws.authorizer` - an API Gateway Lambda authorizer. It imports only
  :mod:`authgate.resource` (the verifier kit): no FastAPI, no database, no server settings,
  so its cold start is small and it can be deployed with ``pip install authgate``.
* :mod:`authgate.aws.handler` - the whole HTTP API (the FastAPI app) through Mangum.
* :mod:`authgate.aws.tasks` - the scheduled work a long-running server does in the
  background (pruning, mail delivery, key rotation), once per EventBridge event.

This package file imports nothing, so importing the authorizer pulls in nothing else.
See docs/aws.md.
"""
