"""Reversible masking through the gateway with the real OpenAI SDK.

Usage: openai_tokenize.py BASE_URL CA_PEM EMAIL ANSWER TOKEN

Sends a prompt holding EMAIL; the test's fake LLM answers ANSWER (which
holds TOKEN, the token the gateway gave the email), streamed in two deltas
split at every byte offset of TOKEN (one streamed request per offset), then
once more without streaming. Prints one JSON line: the texts the SDK
assembled, in order, and the buffered answer's text.
"""

import json
import ssl
import sys

import openai

try:  # the SDK's HTTP library: httpx2 in openai 3.x, httpx before
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx

base_url, ca, email, answer, token = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
client = openai.OpenAI(
    base_url=base_url,
    api_key="sk-test-not-a-real-key",
    http_client=httpx.Client(verify=ctx),
    max_retries=0,
)
messages = [{"role": "user", "content": f"Please draft a note to {email}."}]
# Byte offsets: the answer is ASCII.
at = answer.index(token)
streamed = []
for cut in range(at, at + len(token) + 1):
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        stream=True,
        extra_query={"answer": answer, "cut": str(cut)},
    )
    parts = []
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                parts.append(choice.delta.content)
    streamed.append("".join(parts))

buffered = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=messages,
    extra_query={"answer": answer, "cut": "0"},
)

print(json.dumps({
    "streamed": streamed,
    "buffered": buffered.choices[0].message.content,
}))
