// The React example, built into example/dist and served by the example host at /react/ (examples/host/app.py).
// `npm run dev` serves it with Vite and proxies the host (run `python -m examples.host` first).
import react from "@vitejs/plugin-react";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const host = "http://127.0.0.1:8000";

export default defineConfig({
  base: "/react/",
  plugins: [react()],
  // In this repository the package is the directory above; an app that installed it drops this alias.
  resolve: { alias: { "@smartcat/uploader-react": fileURLToPath(new URL("../index.mjs", import.meta.url)) } },
  build: { outDir: "dist", emptyOutDir: true },
  server: { proxy: { "/uploader": host, "/assets": host, "/login": host } },
});
