// The playground's upload form (written by hand, not built): the chosen files go to the endpoint as
// a GraphQL multipart request, with the session cookie the Login tab set, and the JSON answer is
// shown under the form. One file is uploadMedia, several are uploadMediaItems (all or nothing).
(function () {
  "use strict";
  const FIELDS = "id name url mimeType size width height alt folder dimensions { name url width height }";
  const ONE = `mutation Upload($file: Upload!, $alt: String, $folder: String) {
  uploadMedia(file: $file, alt: $alt, folder: $folder) { ${FIELDS} }
}`;
  const SEVERAL = `mutation UploadSeveral($items: [MediaUploadInput!]!) {
  uploadMediaItems(items: $items) { ${FIELDS} }
}`;
  const config = JSON.parse(document.getElementById("modula-playground-config").textContent);
  const form = document.getElementById("modula-upload-form");
  const result = document.getElementById("modula-upload-result");

  function request(files, alt, folder) {
    let operations;
    const map = {};
    if (files.length === 1) {
      operations = { query: ONE, variables: { file: null, alt, folder } };
      map["0"] = ["variables.file"];
    } else {
      operations = { query: SEVERAL, variables: { items: files.map(() => ({ file: null, alt, folder })) } };
      files.forEach((_, i) => { map[String(i)] = [`variables.items.${i}.file`]; });
    }
    const body = new FormData();
    body.append("operations", JSON.stringify(operations));
    body.append("map", JSON.stringify(map));
    files.forEach((file, i) => body.append(String(i), file, file.name));
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const files = Array.from(form.elements.files.files);
    const alt = form.elements.alt.value || null;
    const folder = form.elements.folder.value || null;
    const button = form.querySelector("button");
    button.disabled = true;
    result.textContent = "Uploading…";
    try {
      const response = await fetch(config.endpoint, {
        method: "POST",
        body: request(files, alt, folder),
        credentials: "same-origin",
        // A multipart request needs a header no HTML form can send (see graphql/README.md).
        headers: { "GraphQL-Require-Preflight": "1", Accept: "application/json" },
      });
      const text = await response.text();
      try {
        result.textContent = JSON.stringify(JSON.parse(text), null, 2);
      } catch (_) {
        result.textContent = `HTTP ${response.status}: ${text}`;
      }
    } catch (error) {
      result.textContent = `The upload did not reach the server: ${error}`;
    } finally {
      button.disabled = false;
    }
  });
})();
