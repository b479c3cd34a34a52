/** Subprocess helper for mod_test.ts: selects the backend as a CLI would, then exits. */
import { initBackend } from "../../lib/backend/mod.ts";
const info = await initBackend();
console.log(JSON.stringify({ name: info.name }));
