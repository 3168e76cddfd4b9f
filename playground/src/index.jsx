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

createRoot(document.getElementById("graphiql")).render(
  <GraphiQL
    fetcher={fetcher}
    defaultTabs={config.tabs}
    defaultEditorToolsVisibility={true}
    visiblePlugins={undefined}
  />,
);
