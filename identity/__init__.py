"""Who a signed-in user is, in the tokens the Cognito user pool issues: the user pool's
pre token generation trigger (AWS mode only; infra/terraform/auth.tf).

A package of its own, beside ``ingest/`` and ``query_api/``, because it is a Lambda of
its own that neither API function imports and that runs at sign-in, not per request:
the query API only reads the claim this writes (``pipeline/auth.py``), and putting the
trigger inside ``query_api/`` would ship the query code in its zip and hide it from
whoever looks for "what adds customer_id to a token". ``core`` decides (pure), ``handler``
is the Lambda entry point."""
