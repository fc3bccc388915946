//! Client-request parsing (`session::parse_request`: JSON into `ClientMessage`, then topics,
//! resume points and prefixes validated) on any text a client could send.
//!
//! Checks, beyond "never panics": every topic of an accepted request is one that `Topic::parse`
//! accepts as it is (validation cannot be bypassed through JSON escapes, resume maps or
//! prefixes), and a refusal has a message to send. Only valid UTF-8 reaches the parser, as in a
//! session.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scoreline_protocol::{MatchTopic, Topic};
use scoreline_service::session::{Request, parse_request};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let valid = |topic: &Topic| Topic::parse(topic.as_str()).as_ref() == Ok(topic);
    match parse_request(text) {
        Ok(Request::Subscribe(topics, resume)) => {
            assert!(!topics.is_empty());
            assert!(topics.iter().all(valid), "{topics:?}");
            for topic in resume.keys() {
                assert_eq!(MatchTopic::parse(topic.as_str()).as_ref(), Ok(topic));
            }
        }
        Ok(Request::Unsubscribe(topics)) => {
            assert!(!topics.is_empty());
            assert!(topics.iter().all(valid), "{topics:?}");
        }
        Ok(Request::List { prefix, .. }) => assert!(prefix.iter().all(valid), "{prefix:?}"),
        Ok(Request::Ping(_)) => {}
        Err((_, message)) => assert!(!message.is_empty()),
    }
});
