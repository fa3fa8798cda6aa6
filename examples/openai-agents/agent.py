"""A support agent built with the OpenAI Agents SDK, run through transit-guard.

The only changes from a plain OpenAI Agents SDK program: the base URL points at
the gateway, the HTTP client trusts the gateway's CA, and the "API key" is the
agent's own JWT (the gateway verifies it, strips it, and injects the real
upstream credential). Its tools call an internal customers API through the
same gateway, so every step is governed: records come back masked, a delete
is denied, a bulk export is held for a human approval.

Environment:
  GATEWAY_URL   https://localhost:10443
  GATEWAY_CA    path to the gateway CA (target/demo/ca.pem)
  AGENT_TOKEN   the agent's JWT (cargo xtask token --sub agent-7 --group support)
  LLM_BASE_URL  the OpenAI-compatible endpoint behind the gateway
                (default: $GATEWAY_URL/scripted/v1, the scripted test LLM)

Prints one JSON object: the final output and what each tool got back.
"""

import json
import os

import httpx2
from agents import (Agent, Runner, function_tool, set_default_openai_api,
                    set_default_openai_client, set_tracing_disabled)
from openai import AsyncOpenAI, DefaultAsyncHttpx2Client

GATEWAY = os.environ["GATEWAY_URL"]
CA = os.environ["GATEWAY_CA"]
TOKEN = os.environ["AGENT_TOKEN"]
LLM = os.environ.get("LLM_BASE_URL", f"{GATEWAY}/scripted/v1")

seen = []  # what each tool returned, for the caller to check


def call(method: str, path: str) -> str:
    with httpx2.Client(verify=CA, timeout=180) as http:
        r = http.request(method, f"{GATEWAY}{path}", headers={"authorization": f"Bearer {TOKEN}"})
    result = f"{r.status_code} {r.text}"
    seen.append({"tool": f"{method} {path}", "status": r.status_code, "body": r.text})
    return result


@function_tool
def get_customers() -> str:
    """List the customer records."""
    return call("GET", "/customers")


@function_tool
def delete_customer(customer_id: str) -> str:
    """Delete one customer record."""
    return call("DELETE", f"/customers/{customer_id}")


@function_tool
def export_customers() -> str:
    """Export every customer record (bulk)."""
    return call("POST", "/customers/export")


def main() -> None:
    # The gateway's CA: the only TLS change an agent makes.
    client = AsyncOpenAI(base_url=LLM, api_key=TOKEN,
                         http_client=DefaultAsyncHttpx2Client(verify=CA, timeout=180))
    set_default_openai_client(client, use_for_tracing=False)
    set_default_openai_api("chat_completions")
    set_tracing_disabled(True)
    agent = Agent(
        name="support-agent",
        instructions="You help the support team with customer records.",
        tools=[get_customers, delete_customer, export_customers],
    )
    prompt = os.environ.get(
        "AGENT_PROMPT",
        "Clean up the customer list. (debug: my key is sk-proj-PlantedPromptKey0123456789abcd)",
    )
    result = Runner.run_sync(agent, prompt)
    print(json.dumps({"final_output": result.final_output, "tools": seen}))


if __name__ == "__main__":
    main()
