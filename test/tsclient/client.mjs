#!/usr/bin/env node
// client.mjs checks an MCP stdio server from the TypeScript SDK's side:
//
//   node test/tsclient/client.mjs /path/to/activitybi mcp
//
// It spawns the command in argv, initializes, lists tools, calls log_event
// and log_insight, and prints ONE JSON line on stdout:
//
//   {"serverInfo":{...},"tools":["log_event",...],
//    "results":[<structuredContent of log_event>,<... of log_insight>],
//    "isError":[false,false]}
//
// It exits 1 on any failure (spawn, protocol, timeout, a missing tool or a
// result with isError), with the reason on stderr; the JSON line is still
// printed if both calls returned. The server's stderr is passed through.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const TIMEOUT_MS = Number(process.env.TSCLIENT_TIMEOUT_MS || 30000);

const CALLS = [
  { name: "log_event", arguments: { activity: "called_tool", features: { tool: "ts-sdk" } } },
  { name: "log_insight", arguments: { subject: "user", metric: "prefers_language", value: "go" } },
];

function fail(msg) {
  process.stderr.write(`tsclient: ${msg}\n`);
  process.exit(1);
}

async function main() {
  const [command, ...args] = process.argv.slice(2);
  if (!command) {
    fail("usage: node client.mjs COMMAND [ARGS...]");
  }
  // The SDK's default environment keeps only HOME, PATH, USER and a few
  // more; the server needs ACTIVITYBI_* and whatever else the caller set.
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined) env[k] = v;
  }
  const transport = new StdioClientTransport({ command, args, env, stderr: "inherit" });
  const client = new Client({ name: "activitybi-tsclient", version: "1.0.0" });
  const timer = setTimeout(() => fail(`timed out after ${TIMEOUT_MS} ms`), TIMEOUT_MS);
  timer.unref();

  await client.connect(transport);
  const serverInfo = client.getServerVersion();
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  for (const c of CALLS) {
    if (!names.includes(c.name)) {
      await client.close();
      fail(`server has no tool ${c.name} (it has: ${names.join(", ")})`);
    }
  }
  const results = [];
  const isError = [];
  const problems = [];
  for (const c of CALLS) {
    const res = await client.callTool(c, undefined, { timeout: TIMEOUT_MS });
    results.push(res.structuredContent ?? null);
    isError.push(Boolean(res.isError));
    if (res.isError) {
      const text = (res.content || []).filter((p) => p.type === "text").map((p) => p.text).join(" ");
      problems.push(`${c.name} returned isError: ${text}`);
    } else if (res.structuredContent === undefined) {
      problems.push(`${c.name} returned no structuredContent`);
    }
  }
  await client.close();
  clearTimeout(timer);
  process.stdout.write(
    JSON.stringify({ serverInfo, tools: names, results, isError }) + "\n",
  );
  if (problems.length > 0) {
    fail(problems.join("; "));
  }
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
