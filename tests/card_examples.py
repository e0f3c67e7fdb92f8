"""Real MCP `server.json` files and an ACP agent manifest, from the projects' published examples.

- MCP: docs/reference/server-json/generic-server-json.md of modelcontextprotocol/registry
  (commit 5c1f63af612017820cdc247ae9fc2671f9b6bfa1; licence: the repository LICENSE, MIT),
  sections "Remote Server Example" and "Filesystem Server with Multiple Packages", copied as
  published. `server.json` has no tool list: `MCP_REMOTE_SERVER_WITH_TOOLS` adds one where the
  MCP Registry keeps publisher metadata (`_meta["io.modelcontextprotocol.registry/
  publisher-provided"].tools`), the place agentroster reads tools from.
- ACP: the `AgentManifest` and `Metadata` schemas of docs/spec/openapi.yaml (ACP 0.2.0) of
  i-am-bee/acp (commit e8299f891c1d9990ea2400f99dedac76a14e3ad8, Apache-2.0): every value is the
  `example` the specification gives for that field.
"""

from __future__ import annotations

import copy
from typing import Any

MCP_REMOTE_SERVER: dict[str, Any] = {
    "$schema": "https://static.modelcontextprotocol.io/schemas/2025-10-17/server.schema.json",
    "name": "io.modelcontextprotocol.anonymous/mcp-fs",
    "description": "Cloud-hosted MCP filesystem server",
    "repository": {
        "url": "https://github.com/example/remote-fs",
        "source": "github",
        "id": "xyz789ab-cdef-0123-4567-890ghijklmno",
    },
    "version": "2.0.0",
    "remotes": [
        {"type": "streamable-http", "url": "https://mcp-fs.anonymous.modelcontextprotocol.io/http"}
    ],
    "_meta": {
        "io.modelcontextprotocol.registry/publisher-provided": {
            "tool": "cloud-deployer",
            "version": "2.4.0",
            "build_info": {
                "commit": "f7e8d9c2b1a0",
                "timestamp": "2023-12-05T08:45:00Z",
                "deployment_id": "remote-fs-deploy-456",
                "region": "us-west-2",
            },
        }
    },
}

#: The remote server with the tools of the reference filesystem server listed (names from
#: modelcontextprotocol/servers src/filesystem).
MCP_REMOTE_SERVER_WITH_TOOLS: dict[str, Any] = copy.deepcopy(MCP_REMOTE_SERVER)
MCP_REMOTE_SERVER_WITH_TOOLS["_meta"]["io.modelcontextprotocol.registry/publisher-provided"][
    "tools"
] = [
    {"name": "read_text_file", "title": "Read Text File", "description": "Read a file as text"},
    {"name": "list_directory", "description": "List the entries of a directory"},
]

MCP_STDIO_SERVER: dict[str, Any] = {
    "$schema": "https://static.modelcontextprotocol.io/schemas/2025-10-17/server.schema.json",
    "name": "io.github.modelcontextprotocol/filesystem",
    "description": (
        "Node.js server implementing Model Context Protocol (MCP) for filesystem operations."
    ),
    "title": "Filesystem",
    "repository": {
        "url": "https://github.com/modelcontextprotocol/servers",
        "source": "github",
        "id": "b94b5f7e-c7c6-d760-2c78-a5e9b8a5b8c9",
    },
    "version": "1.0.2",
    "packages": [
        {
            "registryType": "npm",
            "registryBaseUrl": "https://registry.npmjs.org",
            "identifier": "@modelcontextprotocol/server-filesystem",
            "version": "1.0.2",
            "transport": {"type": "stdio"},
            "packageArguments": [
                {
                    "type": "positional",
                    "valueHint": "target_dir",
                    "description": "Path to access",
                    "default": "/Users/username/Desktop",
                    "isRequired": True,
                    "isRepeated": True,
                }
            ],
            "environmentVariables": [
                {
                    "name": "LOG_LEVEL",
                    "description": "Logging level (debug, info, warn, error)",
                    "default": "info",
                }
            ],
        },
        {
            "registryType": "oci",
            "identifier": "docker.io/mcp/filesystem:1.0.2",
            "transport": {"type": "stdio"},
            "runtimeArguments": [
                {
                    "type": "named",
                    "description": "Mount a volume into the container",
                    "name": "--mount",
                    "value": "type=bind,src={source_path},dst={target_path}",
                    "isRequired": True,
                    "isRepeated": True,
                    "variables": {
                        "source_path": {
                            "description": "Source path on host",
                            "format": "filepath",
                            "isRequired": True,
                        },
                        "target_path": {
                            "description": "Path to mount in the container. It should be "
                            "rooted in `/project` directory.",
                            "isRequired": True,
                            "default": "/project",
                        },
                    },
                }
            ],
            "packageArguments": [
                {"type": "positional", "valueHint": "target_dir", "value": "/project"}
            ],
            "environmentVariables": [
                {
                    "name": "LOG_LEVEL",
                    "description": "Logging level (debug, info, warn, error)",
                    "default": "info",
                }
            ],
        },
    ],
    "_meta": {
        "io.modelcontextprotocol.registry/publisher-provided": {
            "tool": "ci-publisher",
            "version": "3.2.1",
            "build_info": {
                "commit": "a1b2c3d4e5f6789",
                "timestamp": "2023-12-01T10:30:00Z",
                "pipeline_id": "filesystem-build-789",
                "environment": "production",
            },
        }
    },
}

ACP_MANIFEST: dict[str, Any] = {
    "name": "chat",
    "description": "Conversational agent with memory, supporting real-time search, Wikipedia "
    "lookups, and weather updates through integrated tools",
    "input_content_types": ["*/*", "image/*", "text/plain", "application/json", "image/png"],
    "output_content_types": ["*/*", "image/*", "text/plain", "application/json", "image/png"],
    "metadata": {
        "documentation": "The agent is a conversational system designed to process user "
        "messages, maintain context, and generate...",
        "license": "Apache-2.0",
        "programming_language": "Python",
        "natural_languages": ["en"],
        "framework": "BeeAI",
        "capabilities": [
            {
                "name": "Conversational AI",
                "description": "Handles multi-turn conversations with memory.",
            },
            {
                "name": "Vacation Request",
                "description": "Handles submission and tracking of vacation requests.",
            },
        ],
        "domains": ["finance", "healthcare", "supply-chain"],
        "tags": ["Chat"],
        "author": {
            "name": "John Smith",
            "email": "jsmith@example.com",
            "url": "https://example.com",
        },
        "links": [
            {"type": "source-code", "url": "https://github.com/i-am-bee/beeai-platform.git"},
            {"type": "homepage", "url": "https://agentcommunicationprotocol.dev"},
        ],
        "dependencies": [{"type": "tool", "name": "weather"}],
        "recommended_models": ["llama3.3:70b-instruct-fp16", "llama3.3"],
    },
    "status": {"avg_run_tokens": 0, "avg_run_time_seconds": 0, "success_rate": 100},
}
