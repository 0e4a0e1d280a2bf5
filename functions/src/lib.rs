//! Cloud entry points over `llmpulse-core`. Empty until the Lambda and Cloud Run handlers land
//! (issue: cloud entry points); the crate exists so the workspace has its final shape.
