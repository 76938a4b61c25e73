"""Register a small sample model against the local stack (`make run`) and follow it to the end.

Uploads the sample files to the emulator's second account (playing the model owner's storage
account), sends the PUT with an ordinary HTTP client, then polls the status URL.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

from devhost.azurite import OWNER_ACCOUNT
from devhost.stack import STACK_FILE

SAMPLE_FILES = {
    "score.py": b"model = None\n\ndef init(model_dir):\n    global model\n    model = model_dir\n\n"
    b"def run(text):\n    return text[::-1]\n",
    "environment.yml": b"name: sample\ndependencies:\n  - python=3.11\n",
    "index.md": b"# Sample model\n\nReverses its input. Registered by `make example`.\n",
    "weights.bin": bytes(range(256)) * 40_000,  # about 10 MiB: several blocks
}


def upload_sources(blob_endpoint: str) -> dict[str, str]:
    name, key = OWNER_ACCOUNT
    service = BlobServiceClient(
        f"{blob_endpoint}/{name}", credential={"account_name": name, "account_key": key}
    )
    container = service.get_container_client("sample-model")
    if not container.exists():
        container.create_container()
    urls = {}
    for target, data in SAMPLE_FILES.items():
        container.upload_blob(target, data, overwrite=True)
        sas = generate_blob_sas(
            name,
            "sample-model",
            target,
            account_key=key,
            permission=BlobSasPermissions(read=True),
            expiry=datetime.now(UTC) + timedelta(hours=1),
        )
        urls[target] = f"{container.url}/{target}?{sas}"
    return urls


def request_body(urls: dict[str, str]) -> dict[str, object]:
    return {
        "model_config": {
            "type": "DECODER",
            "description": "A tiny sample model",
            "inference_properties": {"entry_script": "score.py", "conda_env": "environment.yml"},
        },
        "model_files": urls,
        "model_metainfo": {
            "input_types": ["NATURAL_LANGUAGE"],
            "input_languages": ["en"],
            "input_description": "Any text",
            "output_types": ["NATURAL_LANGUAGE"],
            "output_languages": ["en"],
            "output_description": "The text reversed",
            "num_params": 1,
            "index_page_file": "index.md",
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", default="http://127.0.0.1:7071")
    parser.add_argument("--name", default="sample-model")
    parser.add_argument("--version", default=datetime.now(UTC).strftime("%Y%m%d.%H%M%S"))
    parser.add_argument("--user", default="local-user", help="principal id sent as X-MS-CLIENT-PRINCIPAL-ID")
    args = parser.parse_args()
    if not STACK_FILE.exists():
        print("the local stack is not running: start it with `make run` in another terminal", file=sys.stderr)
        return 1
    stack = json.loads(STACK_FILE.read_text())
    urls = upload_sources(stack["blob_endpoint"])
    headers = {"X-MS-CLIENT-PRINCIPAL-ID": args.user, "X-MS-CLIENT-PRINCIPAL-NAME": args.user}
    with httpx.Client(base_url=args.api, headers=headers, timeout=30) as client:
        response = client.put(f"/api/v1.0/model/{args.name}/{args.version}", json=request_body(urls))
        print(response.status_code, response.json())
        if response.status_code != 202:
            return 1
        status_url = response.headers["Location"]
        for _ in range(600):
            status = client.get(status_url).json()
            copied = sum(f["bytes_copied"] for f in status["files"])
            print(f"{status['state']:<10} {copied:>10} bytes  {status['message']}")
            if status["state"] != "InProgress":
                return 0 if status["state"] == "Finished" else 1
            time.sleep(0.5)
    print("gave up waiting", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
