Feature: Component statuses
  `kubectl get componentstatus` (deprecated since 1.19, still served) shows whether the
  controller-manager and the scheduler on the apiserver's machine answer their health checks:
  Healthy with message "ok", or Unhealthy with what the check met (on a kubeadm node a dead
  scheduler's port refuses the connection; where it ran on a machine of its own, its name no
  longer resolves).

  Scenario: The controller-manager and the scheduler are Healthy
    Given a cluster with 1 node
    Then within 30 seconds componentstatus controller-manager is Healthy with message "ok"
    And within 30 seconds componentstatus scheduler is Healthy with message "ok"

  @needs:topology @needs:kill-leader
  Scenario: A killed scheduler shows Unhealthy, the controller-manager stays Healthy
    Given a cluster with 1 node
    And 1 controller-manager replica and 1 scheduler replica
    And within 30 seconds componentstatus scheduler is Healthy
    When the leading scheduler is killed
    Then within 30 seconds componentstatus scheduler is Unhealthy with message 'Get "*/healthz": dial tcp*'
    And within 30 seconds componentstatus controller-manager is Healthy
