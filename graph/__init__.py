"""GraphQL schema: types, queries, mutations and subscriptions."""
