#!/usr/bin/env node
// kalamdb-orm: writes a Drizzle schema.ts for a KalamDB server (see generateSchema).
import { writeFileSync } from 'node:fs';
import { Auth, KalamError, createClient } from '@kalam-wasm/client';
import { generateSchema, type GenerateOptions } from './generate.js';
import type { KalamSystemColumnName } from './ktable.js';

const USAGE = `Usage: kalamdb-orm --url <url> --user <user> --password <password> [options]

  --url <url>                 server URL (default: $KALAMDB_URL or http://localhost:8080)
  --user <user>               user (default: $KALAMDB_USER or admin)
  --password <password>       password (default: $KALAMDB_PASSWORD; required)
  --out <file>                output file (default: schema.ts)
  --namespace <name>          only these namespaces (repeatable, or comma-separated)
  --include-system            include the system and dba namespaces
  --include-system-columns [all|_seq,_deleted,...]
                              add KalamDB's system columns to the table types
  --bigint-mode <mode>        BIGINT as string (default, exact text), bigint or number
  --no-type-aliases           no $inferSelect/$inferInsert aliases
  --describe                  DESCRIBE every table (may need a dba or system role)`;

function parseArgs(argv: string[]): { url: string; user: string; password?: string; out: string; options: GenerateOptions } {
  const value = (i: number, flag: string) => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`);
    return v;
  };
  let url = process.env.KALAMDB_URL || 'http://localhost:8080';
  let user = process.env.KALAMDB_USER || 'admin';
  let password = process.env.KALAMDB_PASSWORD;
  let out = 'schema.ts';
  const options: GenerateOptions = { namespaces: [] };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    switch (flag) {
      case '--url': url = value(i++, flag); break;
      case '--user': user = value(i++, flag); break;
      case '--password': password = value(i++, flag); break;
      case '--out': out = value(i++, flag); break;
      case '--namespace': options.namespaces!.push(...value(i++, flag).split(',').map((n) => n.trim()).filter(Boolean)); break;
      case '--include-system': options.includeSystem = true; break;
      case '--no-type-aliases': options.includeTypeAliases = false; break;
      case '--describe': options.describe = true; break;
      case '--bigint-mode': {
        const mode = value(i++, flag);
        if (mode !== 'string' && mode !== 'bigint' && mode !== 'number') throw new Error(`--bigint-mode must be string, bigint or number (got ${mode})`);
        options.bigIntMode = mode;
        break;
      }
      case '--include-system-columns': {
        const next = argv[i + 1];
        if (next === undefined || next.startsWith('--') || next === 'true') {
          options.includeSystemColumns = true;
          if (next === 'true') i++;
        } else if (next === 'all') {
          options.includeSystemColumns = 'all';
          i++;
        } else {
          const names = next.split(',').map((n) => n.trim()).filter(Boolean);
          for (const n of names) if (n !== '_seq' && n !== '_deleted' && n !== '_commit_seq') throw new Error(`unknown system column ${n} (expected _seq, _deleted, _commit_seq)`);
          options.includeSystemColumns = names as KalamSystemColumnName[];
          i++;
        }
        break;
      }
      case '--help': case '-h':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${flag}`);
    }
  }
  return { url, user, password, out, options };
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
    if (!args.password) throw new Error('--password (or $KALAMDB_PASSWORD) is required');
  } catch (err) {
    console.error(`kalamdb-orm: ${(err as Error).message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const { url, user, password, out, options } = args;
  const client = createClient({ url, authProvider: async () => Auth.basic(user, password!) });
  try {
    const schema = await generateSchema(client, options);
    writeFileSync(out, schema);
    const tables = (schema.match(/^export const \w+ = kTable/gm) ?? []).length;
    console.log(`kalamdb-orm: ${tables} table${tables === 1 ? '' : 's'} -> ${out}`);
  } catch (err) {
    const e = KalamError.from(err);
    console.error(`kalamdb-orm: ${e.code}: ${e.message}`);
    process.exitCode = 1;
  } finally {
    await client.shutdown();
  }
}

void main();
