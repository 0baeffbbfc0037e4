Feature: Deleting a Deployment with each propagation policy
  With Background propagation the Deployment goes at once and its ReplicaSets and pods after
  it; Foreground keeps the Deployment (with a foregroundDeletion finalizer) until its dependents are gone;
  Orphan deletes only the Deployment and leaves the ReplicaSet and pods without an owner.

  Background:
    Given a cluster with 1 node
    And I apply fixtures/web-deployment.yaml
    And within 60 seconds deployment web is rolled out

  Scenario: Background propagation
    When I delete deployment web with propagation policy Background
    Then within 10 seconds no deployment web exists
    And within 60 seconds no replicaset web-* exists
    And within 60 seconds no pod web-* exists

  Scenario: Foreground propagation
    When I delete deployment web with propagation policy Foreground
    Then within 10 seconds deployment web is being deleted
    And within 60 seconds no pod web-* exists
    And within 60 seconds no replicaset web-* exists
    And within 60 seconds no deployment web exists

  Scenario: Orphan propagation
    When I delete deployment web with propagation policy Orphan
    Then within 10 seconds no deployment web exists
    And within 30 seconds replicaset web-* has no owner
    And within 10 seconds pod web-* is ready
    And within 10 seconds pod web-* exists
