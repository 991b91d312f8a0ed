/**
 * Lists every skipped test at the end of a run, with its title (which states what it needs, e.g.
 * "[needs Citus]"), so a skip is never silent.
 */
import path from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';

export default class SkipsReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const lines: string[] = [];
    for (const m of modules) {
      for (const t of m.children.allTests('skipped')) lines.push(`  ${path.relative(process.cwd(), m.moduleId)} > ${t.fullName}`);
    }
    if (lines.length > 0) console.log(`\n${lines.length} test(s) skipped, each for the reason in its title:\n${lines.join('\n')}\n`);
  }
}
