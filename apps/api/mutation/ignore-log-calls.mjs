// Stryker ignorer: no mutants inside `this.logger.<level>(...)` statements. Log text and log
// fields are not behaviour the mutation tests assert (what logs may hold is guarded by the leak
// scan of `pnpm test`, test/log-scan); mutating them only adds survivors that say nothing.
import { declareValuePlugin, PluginKind } from '@stryker-mutator/api/plugin';

const LEVELS = new Set(['log', 'error', 'warn', 'debug', 'verbose', 'fatal']);

function isLoggerCall(node) {
  if (node?.type !== 'CallExpression' || node.callee.type !== 'MemberExpression') return false;
  const { object, property } = node.callee;
  return (
    property.type === 'Identifier' &&
    LEVELS.has(property.name) &&
    object.type === 'MemberExpression' &&
    object.object.type === 'ThisExpression' &&
    object.property.type === 'Identifier' &&
    object.property.name === 'logger'
  );
}

export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, 'log-calls', {
    shouldIgnore(path) {
      if (path.isExpressionStatement() && isLoggerCall(path.node.expression))
        return 'a log line (see mutation/ignore-log-calls.mjs)';
      return undefined;
    },
  }),
];
