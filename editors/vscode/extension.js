// The Runbook extension: starts `runbook lsp` (the language server that ships with
// runbook-lang's `lsp` extra) for .runbook files. Highlighting comes from the TextMate
// grammar in syntaxes/, and works without the server.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const settings = vscode.workspace.getConfiguration("runbook");
  const [command, ...args] = settings.get("server.command", ["runbook", "lsp"]);
  const server = { command, args, transport: TransportKind.stdio };
  client = new LanguageClient(
    "runbook",
    "Runbook",
    { run: server, debug: server },
    {
      documentSelector: [{ language: "runbook" }],
      initializationOptions: { debounceMs: settings.get("server.debounceMs", 100) },
      synchronize: {
        // Imported modules that change on disk are checked again in the files that import them.
        fileEvents: vscode.workspace.createFileSystemWatcher("**/*.runbook"),
      },
    }
  );
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start().catch((error) => {
    vscode.window.showErrorMessage(
      `Runbook: cannot start \`${command} ${args.join(" ")}\` (${error.message}). ` +
        "Install the server with: pip install 'runbook-lang[lsp]', or set runbook.server.command."
    );
  });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
