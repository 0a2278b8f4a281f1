// Tokenizes runbook files with VS Code's own TextMate engine (vscode-textmate and the
// Oniguruma regular expressions VS Code uses), for tests/test_textmate.py.
//
//   node textmate_tokenize.js GRAMMAR FILE...      (NODE_PATH names the packages' folder)
//
// Prints one JSON object: for each file, the scopes still open at its end (none when every
// string and interpolation was closed) and its tokens as [text, innermost scope].
"use strict";

const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

async function main() {
  const [grammarPath, ...files] = process.argv.slice(2);
  const wasm = fs.readFileSync(path.join(path.dirname(require.resolve("vscode-oniguruma")),
                                         "onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer);
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (text) => new oniguruma.OnigString(text),
    }),
    loadGrammar: async () => vsctm.parseRawGrammar(fs.readFileSync(grammarPath, "utf8"),
                                                   grammarPath),
  });
  const grammar = await registry.loadGrammar("source.runbook");
  const result = {};
  for (const file of files) {
    let stack = vsctm.INITIAL;
    const tokens = [];
    for (const line of fs.readFileSync(file, "utf8").split("\n")) {
      const lineTokens = grammar.tokenizeLine(line, stack);
      for (const token of lineTokens.tokens) {
        const text = line.substring(token.startIndex, token.endIndex);
        if (text.trim()) tokens.push([text, token.scopes[token.scopes.length - 1]]);
      }
      stack = lineTokens.ruleStack;
    }
    result[file] = { open: stack.depth - 1, tokens };
  }
  process.stdout.write(JSON.stringify(result));
}

main().catch((error) => {
  process.stderr.write(String(error.stack || error) + "\n");
  process.exit(1);
});
