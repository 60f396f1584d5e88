"""E-guarantees (电子保函): issuers, products and rates, orders, letters, verification, release, claims."""
