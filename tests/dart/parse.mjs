// Parses each Dart file named on the command line with tree-sitter's Dart
// grammar (UserNobody14/tree-sitter-dart as built to wasm in the
// tree-sitter-wasms npm package, run by web-tree-sitter) and prints one JSON
// line per file: the node count and every ERROR or MISSING node with its
// position. Exit status 1 when any file has one. Syntax only: there is no
// Dart SDK here, so nothing is type-checked or compiled.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { Parser, Language } from 'web-tree-sitter'

const require = createRequire(import.meta.url)
await Parser.init()
const Dart = await Language.load(require.resolve('tree-sitter-wasms/out/tree-sitter-dart.wasm'))
const parser = new Parser()
parser.setLanguage(Dart)

let failed = false
for (const file of process.argv.slice(2)) {
  const tree = parser.parse(readFileSync(file, 'utf8'))
  const problems = []
  let nodes = 0
  const cursor = tree.walk()
  // Depth-first over every node, named or not.
  for (let more = true; more;) {
    nodes++
    const node = cursor.currentNode
    if (node.type === 'ERROR' || node.isMissing) {
      problems.push({
        kind: node.isMissing ? `MISSING ${node.type}` : 'ERROR',
        row: node.startPosition.row + 1,
        column: node.startPosition.column + 1,
        text: node.text.slice(0, 80),
      })
    }
    if (cursor.gotoFirstChild() || cursor.gotoNextSibling()) continue
    more = false
    while (cursor.gotoParent()) {
      if (cursor.gotoNextSibling()) { more = true; break }
    }
  }
  if (problems.length > 0 || tree.rootNode.hasError) failed = true
  console.log(JSON.stringify({ file, nodes, hasError: tree.rootNode.hasError, problems }))
}
process.exit(failed ? 1 : 0)
