"""Lambda entry point of the user pool's pre token generation trigger (version 2 events)."""
from __future__ import annotations

from identity.core import answer
from pipeline.logs import function_logger

logger = function_logger()


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    event, decision = answer(event)
    if decision.customer_id is None and decision.problem is None:
        logger.info("no customer_id claim: the user has no customer number", extra={
            "trigger_source": event.get("triggerSource"), "user_pool_id": event.get("userPoolId")})
    elif decision.problem is not None:
        # who (the user's sub, not their name or email) and why; the token is still issued,
        # without the claim, so this customer reads nothing until the shop corrects the number
        attributes = (event.get("request") or {}).get("userAttributes") or {}
        logger.warning("no customer_id claim: the user's customer number is malformed", extra={
            "reason": decision.problem, "sub": attributes.get("sub"), "trigger_source": event.get("triggerSource"),
            "user_pool_id": event.get("userPoolId")})
    return event
