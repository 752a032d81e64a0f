"""A real OpenFeature client for the integration test: openfeature-sdk with the OFREP provider
(openfeature-provider-ofrep), driven line by line on stdin ("FLAG TARGETING_KEY"); each answer is
one JSON line on stdout. The code default is False: the safe default."""

import json
import os
import sys

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

token = os.environ["OFREP_TOKEN"]
api.set_provider(
    OFREPProvider(
        base_url=os.environ["OFREP_URL"],
        headers_factory=lambda: {"Authorization": f"Bearer {token}"},
        timeout=2.0,
    )
)
client = api.get_client("stagegate-test")
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    parts = line.split()
    if not parts:
        continue
    flag = parts[0]
    ctx = EvaluationContext(parts[1]) if len(parts) > 1 else EvaluationContext()
    d = client.get_boolean_details(flag, False, ctx)
    print(
        json.dumps(
            {
                "value": d.value,
                "reason": str(d.reason.value if hasattr(d.reason, "value") else d.reason) if d.reason else None,
                "variant": d.variant,
                "errorCode": str(d.error_code.value if hasattr(d.error_code, "value") else d.error_code) if d.error_code else None,
            }
        ),
        flush=True,
    )
