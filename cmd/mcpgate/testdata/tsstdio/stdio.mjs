// stdio.mjs: a stdio-only MCP host, made of the TypeScript MCP SDK's
// Client and StdioClientTransport, that starts `mcpgate connect URL` as its
// server, as Claude Desktop would.
//
// Usage: node stdio.mjs <mcpgate binary> <gateway /mcp URL> <tool> <arguments as JSON>
//
// The child gets the SDK's default environment plus BROWSER and
// XDG_CONFIG_HOME from ours (a host passes such variables in its server
// configuration's "env"). It lists the tools, calls <tool> with the
// arguments, closes, and prints one JSON summary on stdout; the Go test
// (../../connect_stdio_test.go) makes the assertions. Errors are recorded
// in the summary rather than thrown: "transportErrors" holds what the
// transport reported, such as a line of the child's stdout that is not a
// JSON-RPC message.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const [bin, url, tool, args] = process.argv.slice(2);
if (!bin || !url || !tool || !args) {
  console.error('usage: node stdio.mjs <mcpgate binary> <gateway url> <tool> <arguments as JSON>');
  process.exit(2);
}

// The whole run is bounded: the Go test also kills us on its own timeout.
const watchdog = setTimeout(() => {
  console.error('stdio.mjs: timed out');
  process.exit(3);
}, 90_000);

const summary = {
  serverName: null,
  tools: [],
  call: null,
  stderr: '',
  transportErrors: [],
  errors: [],
};

const env = {};
for (const k of ['BROWSER', 'XDG_CONFIG_HOME']) {
  if (process.env[k] !== undefined) env[k] = process.env[k];
}
const transport = new StdioClientTransport({ command: bin, args: ['connect', url], env, stderr: 'pipe' });
transport.stderr.on('data', (chunk) => { summary.stderr += chunk.toString(); });
const client = new Client({ name: 'mcpgate-tsstdio', version: '0.0.0' });
client.onerror = (err) => { summary.transportErrors.push(String(err?.message ?? err)); };

try {
  await client.connect(transport);
  summary.serverName = client.getServerVersion()?.name ?? null;
  const listed = await client.listTools();
  summary.tools = listed.tools.map((t) => t.name);
  const res = await client.callTool({ name: tool, arguments: JSON.parse(args) });
  summary.call = {
    text: (res.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join(''),
    isError: res.isError === true,
  };
} catch (err) {
  summary.errors.push(String(err?.stack ?? err));
}
try {
  await client.close();
} catch (err) {
  summary.errors.push('close: ' + String(err?.message ?? err));
}
clearTimeout(watchdog);
process.stdout.write(JSON.stringify(summary) + '\n');
