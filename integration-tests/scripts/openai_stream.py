"""Streams a chat completion through the gateway with the real OpenAI SDK.

Usage: openai_stream.py BASE_URL CA_PEM

Prints one JSON line: the text the SDK assembled from the deltas, the
number of chunks, the finish reason, the usage, and the text the SDK's
own stream helper (`chat.completions.stream`) accumulated. Any exception
(a chunk the SDK cannot parse) fails the run with a traceback.
"""

import json
import ssl
import sys

import openai

try:  # the SDK's HTTP library: httpx2 in openai 3.x, httpx before
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx

base_url, ca = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
client = openai.OpenAI(
    base_url=base_url,
    api_key="sk-test-not-a-real-key",
    http_client=httpx.Client(verify=ctx),
    max_retries=0,
)
messages = [{"role": "user", "content": "My card is 5555 5555 5555 4444, what now?"}]

stream = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=messages,
    stream=True,
    stream_options={"include_usage": True},
)
parts, chunks, finish, usage = [], 0, None, None
for chunk in stream:
    chunks += 1
    for choice in chunk.choices:
        if choice.delta.content:
            parts.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
    if chunk.usage:
        usage = chunk.usage.total_tokens

with client.chat.completions.stream(model="gpt-4o-mini", messages=messages) as s:
    for _ in s:
        pass
    helper = s.get_final_completion().choices[0].message.content

print(json.dumps({
    "text": "".join(parts),
    "chunks": chunks,
    "finish": finish,
    "usage": usage,
    "helper_text": helper,
}))
