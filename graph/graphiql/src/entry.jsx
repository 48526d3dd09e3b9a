// Entry point of the embedded GraphiQL bundle. Built by build.sh into
// ../assets/graphiql.js and ../assets/graphiql.css.
import React from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import 'graphiql/graphiql.css';
import './page.css';

// Headers typed into GraphiQL's "Headers" editor (for example
// {"Authorization": "Bearer <token>"}) are passed to the fetcher per request
// and merged into the HTTP request by createGraphiQLFetcher.
const fetcher = createGraphiQLFetcher({
  url: new URL('/graphql', window.location.href).toString(),
});

const defaultQuery = `# Welcome to the secretlog GraphQL API.
#
# To authenticate, open the "Headers" tab below and paste:
#   {"Authorization": "Bearer <token>"}
#
# Press Ctrl+Enter (or the play button) to run a query.

{
  __typename
}
`;

// In development mode the server's /graphiql/dev.js sets the development
// token's headers; elsewhere that script sets nothing.
const devHeaders = window.secretlogDevHeaders;

createRoot(document.getElementById('graphiql')).render(
  React.createElement(GraphiQL, {
    fetcher,
    defaultQuery,
    defaultHeaders: devHeaders,
    isHeadersEditorEnabled: true,
    // Do not keep bearer tokens in localStorage across sessions.
    shouldPersistHeaders: false,
    defaultEditorToolsVisibility: 'headers',
  }),
);
