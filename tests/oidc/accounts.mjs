// The real provider's test users (provider.mjs), also read by selftest.mjs.
// The test users, by login name (what the login form takes). Subjects are
// not the login names, so a relying party that confuses them shows.
//   alice:   everything, e-mail verified
//   bob:     e-mail NOT verified
//   carol:   no preferred_username (username from the e-mail's local part)
//   dave:    no e-mail, no preferred_username: only name
//   erin:    a preferred_username that needs cleaning to a username
//   mallory: asserts alice's preferred_username and alice's (verified)
//            e-mail: must never be merged into alice's account
export const ACCOUNTS = {
  alice: {
    sub: 'a1ice-5f0c2b7e', email: 'alice@example.com', email_verified: true,
    preferred_username: 'alice', name: 'Alice Liddell',
  },
  bob: {
    sub: 'b0b-8d41e9a3', email: 'bob@example.com', email_verified: false,
    preferred_username: 'bob', name: 'Bob Builder',
  },
  carol: {
    sub: 'car01-2c6f0d15', email: 'carol.danvers@example.org', email_verified: true,
    name: 'Carol Danvers',
  },
  dave: { sub: 'dave-71be04c9', name: 'Dave Null' },
  erin: {
    sub: 'erin-3e9a7741', email: 'erin@example.net', email_verified: true,
    preferred_username: 'Érin O\'Brien!', name: 'Érin O\'Brien',
  },
  mallory: {
    sub: 'ma11ory-0bad0bad', email: 'alice@example.com', email_verified: true,
    preferred_username: 'alice', name: 'Alice Liddell',
  },
};
