// The React example: the host's page with <Uploader/> (the element) and a list the host renders itself from
// useUploader() — both views of the one engine of this origin.
import { StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";
import { Uploader, useUploader } from "@smartcat/uploader-react";

function MyUploads() {
  const { uploads, summary, engine } = useUploader({ base: "/uploader" });
  return (
    <section aria-label="My uploads" data-engine={engine.status}>
      <h2>My uploads {summary.text && <small className="summary">({summary.text})</small>}</h2>
      <ul className="mine">
        {uploads.map((view) => (
          <li key={view.local_id} data-phase={view.phase}>{view.file_name}: {view.label}</li>
        ))}
      </ul>
    </section>
  );
}

function App() {
  const [done, setDone] = useState([]);
  return (
    <>
      <header>
        <strong>Example host</strong>
        <nav aria-label="Host"><a href="/">Upload</a><a href="/projects">Projects</a><a href="/react/">React upload</a></nav>
      </header>
      <main>
        <h1>Upload with React</h1>
        <Uploader base="/uploader" accept=".pdf,.docx,.xlsx,.txt,.bin" compact
                  onCompleted={(finished) => setDone((names) => [...names, finished.message])} />
        <MyUploads />
        {done.length > 0 && <p role="status" className="done">{done.join(" · ")}</p>}
      </main>
    </>
  );
}

createRoot(document.getElementById("root")).render(<StrictMode><App /></StrictMode>);
