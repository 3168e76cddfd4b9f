// The Modula playground: GraphiQL against this server's /graphql, with the docs explorer and
// default tabs holding the example operations the server inlines into the page.
import React from "react";
import { createRoot } from "react-dom/client";
import { GraphiQL } from "graphiql";
import "graphiql/graphiql.css";

const config = JSON.parse(document.getElementById("modula-playground-config").textContent);

// same-origin credentials send the session cookie that the login mutation sets (HttpOnly), so
// logging in from a tab makes the following requests, the schema fetch included, run as that user.
async function fetcher(params, options) {
  const response = await fetch(config.endpoint, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", ...(options?.headers || {}) },
    body: JSON.stringify(params),
  });
  return response.json();
}

// GraphiQL 3.8 opens a fresh browser on the first default tab's query but fills the variables
// editor only from its `variables` prop or from storage, so the Login example would run without
// its variables. With nothing stored yet, hand it the first tab's variables; afterwards the stored
// tabs (each with its own variables) are GraphiQL's to restore, and the prop would overwrite them.
let stored = null;
try {
  stored = window.localStorage.getItem("graphiql:tabState");
} catch {
  // storage refused (a sandboxed page): every load is a fresh one
}
const firstVariables = stored === null ? config.tabs[0]?.variables : undefined;

createRoot(document.getElementById("graphiql")).render(
  <GraphiQL
    fetcher={fetcher}
    defaultTabs={config.tabs}
    {...(firstVariables ? { variables: firstVariables } : {})}
    defaultEditorToolsVisibility={true}
    visiblePlugins={undefined}
  />,
);
