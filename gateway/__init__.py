"""Sandgate's tool gateway: the sandbox tools (and federated upstream tools) as
MCP over streamable HTTP and stdio, and as ``sandgate.gateway.v1.ToolGateway``
over gRPC. Both faces serve one catalog through :class:`gateway.calls.ToolCalls`.
"""
